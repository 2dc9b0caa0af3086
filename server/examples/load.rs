//! A bounded load generator for wx-tokend: N requests over C keep-alive connections (one
//! thread each), reporting requests per second and latency percentiles.
//!
//! ```sh
//! WX_TOKEND_KEY=... cargo run --release -p wx_tokend --example load -- \
//!     --addr 127.0.0.1:8443 --appid wx1234567890abcdef -n 200000 -c 32
//! ```
//! The key comes from the environment, never from the command line (`ps` shows arguments).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    path: String,
    requests: usize,
    connections: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = "127.0.0.1:8443".to_string();
    let mut appid = None;
    let mut path = None;
    let mut requests = 100_000;
    let mut connections = 16;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = val()?,
            "--appid" => appid = Some(val()?),
            "--path" => path = Some(val()?),
            "-n" => requests = val()?.parse().map_err(|e| format!("-n: {e}"))?,
            "-c" => connections = val()?.parse().map_err(|e| format!("-c: {e}"))?,
            _ => {
                return Err(format!(
                    "unknown argument {a}; usage: load --addr HOST:PORT --appid APPID [-n N] [-c C] [--path PATH]"
                ));
            }
        }
    }
    let path = match (path, appid) {
        (Some(p), _) => p,
        (None, Some(a)) => format!("/v1/token/{a}"),
        (None, None) => return Err("--appid or --path is required".into()),
    };
    if connections == 0 || requests < connections {
        return Err("need -n >= -c >= 1".into());
    }
    Ok(Args {
        addr,
        path,
        requests,
        connections,
    })
}

/// Sends `count` GETs on one keep-alive connection; returns each latency and the non-200s.
fn worker(addr: &str, request: &[u8], count: usize) -> Result<(Vec<Duration>, usize), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).ok();
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut latencies = Vec::with_capacity(count);
    let mut failures = 0;
    let mut line = String::new();
    let mut body = Vec::new();
    for _ in 0..count {
        let t0 = Instant::now();
        writer
            .write_all(request)
            .map_err(|e| format!("write: {e}"))?;
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        if !line.starts_with("HTTP/1.1 200") {
            failures += 1;
        }
        let mut content_length = 0usize;
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                content_length = v.trim().parse().map_err(|_| "bad content-length")?;
            }
        }
        body.resize(content_length, 0);
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        latencies.push(t0.elapsed());
    }
    Ok((latencies, failures))
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("load: {e}");
        std::process::exit(2)
    });
    let key = std::env::var("WX_TOKEND_KEY").unwrap_or_default();
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.addr);
    if !key.is_empty() {
        request.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    request.push_str("\r\n");

    // Warm-up: the first request may wait on WeChat; it is not what is measured.
    worker(&args.addr, request.as_bytes(), 1).unwrap_or_else(|e| panic!("warm-up: {e}"));

    let per = args.requests / args.connections;
    let extra = args.requests % args.connections;
    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.connections)
            .map(|i| {
                let (addr, request) = (&args.addr, request.as_bytes());
                s.spawn(move || worker(addr, request, per + usize::from(i < extra)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let wall = start.elapsed();
    let mut all = Vec::with_capacity(args.requests);
    let mut failures = 0;
    for r in results {
        let (lat, f) = r.unwrap_or_else(|e| panic!("worker: {e}"));
        all.extend(lat);
        failures += f;
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{} requests over {} connections in {:.2} s: {:.0} req/s; latency p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; non-200: {}",
        all.len(),
        args.connections,
        wall.as_secs_f64(),
        all.len() as f64 / wall.as_secs_f64(),
        us(pct(0.50)),
        us(pct(0.99)),
        us(*all.last().unwrap()),
        failures
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
