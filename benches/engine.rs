//! Benchmarks of the engine through its C ABI (the figures go to docs/BENCHMARKS.md):
//! - criterion: a cached `wx_token_get` on one thread, and per-call cost with 1 and 2 threads
//!   reading at once (throughput scaling);
//! - then, measured directly: reader latency percentiles while a refresh is in flight against a
//!   2 s upstream versus steady state, and the CPU an idle process with 1,000 apps uses.
//!
//! Run: `cargo bench --bench engine` (add `-- --quick` for a faster, rougher run).

use std::ffi::{CString, c_char};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::Criterion;
use wx_fake::{FakeConfig, FakeWechat};
use wx_token::ffi::*;

fn register(fake: &FakeWechat, appid: &str, extra: &str) -> CString {
    fake.add_app(appid, "bench-secret");
    let opts = CString::new(format!(r#"{{"api_base":"{}"{extra}}}"#, fake.base_url())).unwrap();
    let a = CString::new(appid).unwrap();
    let s = CString::new("bench-secret").unwrap();
    assert_eq!(
        unsafe { wx_token_register(a.as_ptr(), s.as_ptr(), opts.as_ptr()) },
        WX_OK
    );
    a
}

#[inline]
fn get(appid: &CString, buf: &mut [u8; 513]) -> i32 {
    let mut n = 0usize;
    unsafe {
        wx_token_get(
            appid.as_ptr(),
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            &mut n,
        )
    }
}

fn cached_get(c: &mut Criterion, fake: &FakeWechat) {
    let appid = register(fake, "wx_bench_cached", "");
    let mut buf = [0u8; 513];
    assert_eq!(get(&appid, &mut buf), WX_OK);
    c.bench_function("wx_token_get cached, 1 thread", |b| {
        b.iter(|| black_box(get(black_box(&appid), &mut buf)))
    });

    let mut group = c.benchmark_group("wx_token_get cached, per call while N threads read");
    for threads in [1usize, 2] {
        group.bench_function(format!("{threads} threads"), |b| {
            b.iter_custom(|iters| {
                let barrier = Arc::new(Barrier::new(threads));
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let (appid, barrier) = (appid.clone(), barrier.clone());
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 513];
                            barrier.wait();
                            let start = Instant::now();
                            for _ in 0..iters {
                                black_box(get(&appid, &mut buf));
                            }
                            start.elapsed()
                        })
                    })
                    .collect();
                let slowest = handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .max()
                    .unwrap();
                // Wall time per call across all threads: halves if throughput doubles.
                slowest / threads as u32
            })
        });
    }
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Reader latency while a background refresh waits 2 s on a slow upstream.
fn readers_during_slow_refresh(fake: &FakeWechat) {
    fake.set_lifetime(8);
    fake.set_overlap(1);
    let appid = register(
        fake,
        "wx_bench_inflight",
        r#","refresh_ahead_secs":4,"timeout_ms":10000"#,
    );
    let mut buf = [0u8; 513];
    assert_eq!(get(&appid, &mut buf), WX_OK);
    let first = buf;
    let sample = |n: usize, buf: &mut [u8; 513]| {
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            black_box(get(&appid, buf));
            lat.push(t.elapsed());
        }
        lat.sort();
        lat
    };
    let steady = sample(200_000, &mut buf);
    fake.set_delay_ms(2000);
    // The refresh starts 4 s after the fetch and then hangs 2 s in the fake.
    let stats_before = fake.stats().token_endpoint_requests();
    while fake.stats().token_endpoint_requests() == stats_before {
        std::thread::sleep(Duration::from_millis(1));
    }
    let in_flight = sample(200_000, &mut buf);
    assert_eq!(
        buf, first,
        "readers were served the old token while the refresh was in flight"
    );
    fake.set_delay_ms(0);
    fake.set_lifetime(7200);
    fake.set_overlap(300);
    println!(
        "readers during a 2 s refresh: steady p50 {:?} p99 {:?} | in flight p50 {:?} p99 {:?} | p99 ratio {:.2}",
        percentile(&steady, 0.5),
        percentile(&steady, 0.99),
        percentile(&in_flight, 0.5),
        percentile(&in_flight, 0.99),
        percentile(&in_flight, 0.99).as_secs_f64() / percentile(&steady, 0.99).as_secs_f64()
    );
}

fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU used by a process that holds tokens for 1,000 apps and does nothing.
fn idle_with_many_apps(fake: &FakeWechat) {
    let mut buf = [0u8; 513];
    for i in 0..1000 {
        let appid = register(fake, &format!("wx_bench_idle_{i}"), "");
        assert_eq!(get(&appid, &mut buf), WX_OK);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "idle process with 1,000 apps (fake server idle in the same process): {:?} CPU over {:?}",
        cpu_time() - cpu0,
        wall0.elapsed()
    );
}

fn main() {
    let fake = FakeWechat::start(FakeConfig::default()).unwrap();
    let mut c = Criterion::default().configure_from_args();
    cached_get(&mut c, &fake);
    c.final_summary();
    readers_during_slow_refresh(&fake);
    idle_with_many_apps(&fake);
    assert_eq!(wx_token_shutdown(), WX_OK);
}
