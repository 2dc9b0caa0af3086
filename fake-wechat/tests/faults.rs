//! Every fault kind, as a client sees it on the wire.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use wx_fake::{Fault, FaultKind, HUGE_BODY_BYTES, REDIRECT_TARGET};

fn classic_reply(url: &str) -> std::io::Result<Reply> {
    request(url, "GET", &classic_target(APP, SECRET), None)
}

#[test]
fn busy_then_success_and_counted() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::busy().times(2));
    for _ in 0..2 {
        let v = classic(&url, APP, SECRET);
        assert_eq!(
            v,
            serde_json::json!({"errcode": -1, "errmsg": "system error"})
        );
    }
    assert!(classic(&url, APP, SECRET)["access_token"].is_string());
    let s = f.stats();
    assert_eq!((s.token_requests, s.faults_served, s.issued), (3, 2, 1));
    assert_eq!(f.app_stats(APP).faults_served, 2);
    assert!(f.pending_faults().is_empty());
}

#[test]
fn errcode_kinds() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::quota());
    f.push_fault(Fault::wx_error(40164, "invalid ip"));
    f.push_fault(Fault::new(FaultKind::Errcode));
    f.push_fault(Fault::busy().with_errmsg("custom busy"));
    let v = classic(&url, APP, SECRET);
    assert_eq!(v["errcode"], 45009);
    assert_eq!(v["errmsg"], "reach max api daily quota limit");
    let v = stable(&url, APP, SECRET, false);
    assert_eq!(
        (v["errcode"].as_i64(), v["errmsg"].as_str()),
        (Some(40164), Some("invalid ip"))
    );
    let v = stable(&url, APP, SECRET, true);
    assert_eq!(
        (v["errcode"].as_i64(), v["errmsg"].as_str()),
        (Some(-1), Some("fake error"))
    );
    assert_eq!(classic(&url, APP, SECRET)["errmsg"], "custom busy");
    assert_eq!(f.stats().faults_served, 4);
    assert_eq!(f.stats().issued, 0);
}

#[test]
fn http_status_malformed_and_missing_fields() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::new(FaultKind::HttpStatus));
    f.push_fault(Fault::http_status(503));
    f.push_fault(Fault::new(FaultKind::Malformed));
    f.push_fault(Fault::new(FaultKind::MissingFields));
    let r = classic_reply(&url).unwrap();
    assert_eq!(r.status, 500);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(classic_reply(&url).unwrap().status, 503);
    let r = classic_reply(&url).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"{\"access_token\": ");
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    let r = classic_reply(&url).unwrap();
    assert_eq!(r.json(), serde_json::json!({"foo": 1}));
}

#[test]
fn huge_body_is_streamed_with_exact_length() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::new(FaultKind::Huge));
    let r = classic_reply(&url).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len() as u64, HUGE_BODY_BYTES);
    assert_eq!(r.header("content-length"), Some("16777216"));
    let s: String = serde_json::from_slice(&r.body).expect("a JSON string");
    assert_eq!(s.len() as u64, HUGE_BODY_BYTES - 2);
}

#[test]
fn huge_body_client_may_hang_up_early() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::new(FaultKind::Huge));
    let mut s = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET {} HTTP/1.1\r\n\r\n", classic_target(APP, SECRET)).as_bytes(),
    )
    .unwrap();
    let mut first = [0u8; 1024];
    s.read_exact(&mut first).unwrap();
    drop(s);
    // The server carries on serving.
    assert!(classic(&url, APP, SECRET)["access_token"].is_string());
}

#[test]
fn slow_answers_late_without_blocking_others() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::slow(800));
    let begin = Instant::now();
    std::thread::scope(|s| {
        let slow = s.spawn(|| classic(&url, APP, SECRET));
        std::thread::sleep(Duration::from_millis(100));
        let quick_start = Instant::now();
        assert!(classic(&url, APP, SECRET)["access_token"].is_string());
        assert!(
            quick_start.elapsed() < Duration::from_millis(500),
            "not serialized"
        );
        assert!(slow.join().unwrap()["access_token"].is_string());
    });
    assert!(begin.elapsed() >= Duration::from_millis(800));
    let s = f.stats();
    assert_eq!((s.token_requests, s.faults_served, s.issued), (2, 1, 2));
}

#[test]
fn reset_closes_without_answer() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::new(FaultKind::Reset));
    let err = classic_reply(&url).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::ConnectionReset
    ));
    assert!(classic(&url, APP, SECRET)["access_token"].is_string());
    assert_eq!(f.stats().faults_served, 1);
}

#[test]
fn redirect_points_somewhere_no_client_should_go() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::new(FaultKind::Redirect));
    let r = classic_reply(&url).unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(REDIRECT_TARGET));
    assert!(r.body.is_empty());
}

#[test]
fn hang_holds_the_connection_then_closes() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::hang(600));
    let begin = Instant::now();
    assert!(classic_reply(&url).is_err());
    let waited = begin.elapsed();
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn stop_interrupts_a_hang() {
    let f = fake();
    let url = f.base_url();
    f.push_fault(Fault::hang(60_000));
    let client = std::thread::spawn(move || classic_reply(&url));
    std::thread::sleep(Duration::from_millis(200));
    let begin = Instant::now();
    f.stop();
    assert!(
        begin.elapsed() < Duration::from_secs(3),
        "stop waited for the hang"
    );
    assert!(client.join().unwrap().is_err());
}

#[test]
fn global_delay_slows_token_endpoints_only() {
    let f = fake();
    let url = f.base_url();
    f.set_delay_ms(400);
    let begin = Instant::now();
    let t = token_of(&stable(&url, APP, SECRET, false));
    assert!(begin.elapsed() >= Duration::from_millis(400));
    let begin = Instant::now();
    assert_eq!(api_errcode(&url, &t), 0);
    assert!(begin.elapsed() < Duration::from_millis(300));
    f.set_delay_ms(0);
}

#[test]
fn appid_filtered_faults_are_skipped_by_other_apps() {
    let f = fake();
    f.add_app("wx_b", "b");
    let url = f.base_url();
    f.push_fault(Fault::quota().for_app("wx_b"));
    f.push_fault(Fault::busy());
    // APP skips the wx_b fault and takes the busy one behind it.
    assert_eq!(classic(&url, APP, SECRET)["errcode"], -1);
    assert!(classic(&url, APP, SECRET)["access_token"].is_string());
    assert_eq!(stable(&url, "wx_b", "b", false)["errcode"], 45009);
    assert!(stable(&url, "wx_b", "b", false)["access_token"].is_string());
    assert_eq!(f.app_stats("wx_b").faults_served, 1);
    assert_eq!(f.app_stats(APP).faults_served, 1);
}

#[test]
fn faults_are_fifo_and_spare_the_business_api() {
    let f = fake();
    let url = f.base_url();
    let t = token_of(&classic(&url, APP, SECRET));
    f.push_fault(Fault::quota());
    f.push_fault(Fault::busy().times(2));
    f.push_fault(Fault::busy().times(0));
    assert_eq!(api_errcode(&url, &t), 0);
    assert_eq!(f.pending_faults().len(), 2);
    assert_eq!(classic(&url, APP, SECRET)["errcode"], 45009);
    assert_eq!(stable(&url, APP, SECRET, false)["errcode"], -1);
    f.clear_faults();
    assert!(stable(&url, APP, SECRET, false)["access_token"].is_string());
}
