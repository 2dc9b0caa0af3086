//! A deliberately tiny HTTP client on std::net: the fake is tested as a
//! black box over the wire, with no client library smoothing anything over.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use wx_fake::{FakeConfig, FakeWechat};

pub const APP: &str = "wx_app";
pub const SECRET: &str = "s3cret";

pub fn fake() -> FakeWechat {
    fake_with(FakeConfig::default())
}

pub fn fake_with(cfg: FakeConfig) -> FakeWechat {
    FakeWechat::start(cfg.with_app(APP, SECRET)).expect("start fake")
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }
}

/// Sends one request to `addr` ("127.0.0.1:PORT") and reads until the server closes.
pub fn raw_request(addr: &str, request: &[u8]) -> io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    parse_reply(&buf)
}

pub fn parse_reply(buf: &[u8]) -> io::Result<Reply> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no response head"))?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = buf[end + 4..].to_vec();
    let reply = Reply {
        status,
        headers,
        body,
    };
    let declared: usize = reply
        .header("content-length")
        .ok_or_else(|| bad("no Content-Length"))?
        .parse()
        .map_err(|_| bad("bad Content-Length"))?;
    if declared != reply.body.len() {
        return Err(bad("Content-Length does not match body"));
    }
    Ok(reply)
}

pub fn request(
    base_url: &str,
    method: &str,
    target: &str,
    body: Option<&[u8]>,
) -> io::Result<Reply> {
    let addr = base_url.trim_start_matches("http://");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    raw_request(addr, &bytes)
}

pub fn get(base_url: &str, target: &str) -> Reply {
    request(base_url, "GET", target, None).expect("GET")
}

pub fn post(base_url: &str, target: &str, body: &str) -> Reply {
    request(base_url, "POST", target, Some(body.as_bytes())).expect("POST")
}

/// Percent-encodes everything but unreserved characters, like a careful client.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn classic_target(appid: &str, secret: &str) -> String {
    format!(
        "/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
        enc(appid),
        enc(secret)
    )
}

pub fn classic(base_url: &str, appid: &str, secret: &str) -> Value {
    let r = get(base_url, &classic_target(appid, secret));
    assert_eq!(r.status, 200);
    r.json()
}

pub fn stable(base_url: &str, appid: &str, secret: &str, force: bool) -> Value {
    let body = serde_json::json!({
        "grant_type": "client_credential",
        "appid": appid,
        "secret": secret,
        "force_refresh": force,
    });
    let r = post(base_url, "/cgi-bin/stable_token", &body.to_string());
    assert_eq!(r.status, 200);
    r.json()
}

pub fn token_of(v: &Value) -> String {
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {v}"))
        .to_string()
}

/// What the business API says about `token`: 0 if accepted, else the errcode.
pub fn api_errcode(base_url: &str, token: &str) -> i64 {
    let v = get(
        base_url,
        &format!("/cgi-bin/get_api_domain_ip?access_token={}", enc(token)),
    )
    .json();
    if v["ip_list"].is_array() {
        0
    } else {
        v["errcode"]
            .as_i64()
            .unwrap_or_else(|| panic!("odd answer {v}"))
    }
}
