//! One process of a fleet sharing a token store, for the multi-process tests (Rust and the
//! bindings' own) and for trying stores by hand:
//!
//! ```sh
//! cargo run --example store_peer -- --appid wx_demo_appid --secret demo_secret \
//!     --options '{"api_base":"http://127.0.0.1:PORT","store":"file:/tmp/wx-store"}' --threads 4
//! ```
//!
//! It registers the app (with `--report-rejected`, also gets a token), waits for `--go-file` to
//! exist (so a fleet starts at once), then each of `--threads` threads gets a token, after
//! reporting the first one rejected (`wx_token::invalidate`) if `--report-rejected` was given. Each token
//! seen is printed as a fingerprint on its own line (`fnv1a64:<16 hex digits>` of its bytes:
//! enough to tell tokens apart, never the credential itself); errors go to stderr and exit 1.
//! With `--hold-ms N` it then stays up N ms (refreshing in the background) and prints the token
//! it hands out at the end.
//!
//! With `--ticket KIND` ("jsapi", "wx_card", "agent_config") every get (and report) is of that
//! JS-SDK ticket instead of the token (`wx_token::ticket`, `wx_token::ticket_invalidate`).
//!
//! With `--serve-ms N --check BASE` it instead serves like a worker for N ms: every
//! `--interval-ms` (200) it gets a token and calls the fake's business API at BASE with it, and
//! prints one line per change of what it sees, `<ms since start> tok <fingerprint>`,
//! `<ms> err <STATUS>` or `<ms> rejected <errcode>` (a business call answered 40001/42001:
//! a token in service that WeChat no longer accepts), then `done <calls>`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Args {
    appid: String,
    secret: String,
    options: Option<String>,
    threads: usize,
    go_file: Option<PathBuf>,
    report_rejected: bool,
    hold_ms: u64,
    serve_ms: u64,
    interval_ms: u64,
    check: Option<String>,
    ticket: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        appid: String::new(),
        secret: String::new(),
        options: None,
        threads: 1,
        go_file: None,
        report_rejected: false,
        hold_ms: 0,
        serve_ms: 0,
        interval_ms: 200,
        check: None,
        ticket: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--appid" => a.appid = value()?,
            "--secret" => a.secret = value()?,
            "--options" => a.options = Some(value()?),
            "--threads" => a.threads = value()?.parse().map_err(|_| "--threads takes a number")?,
            "--go-file" => a.go_file = Some(value()?.into()),
            "--report-rejected" => a.report_rejected = true,
            "--hold-ms" => a.hold_ms = value()?.parse().map_err(|_| "--hold-ms takes a number")?,
            "--serve-ms" => {
                a.serve_ms = value()?.parse().map_err(|_| "--serve-ms takes a number")?
            }
            "--interval-ms" => {
                a.interval_ms = value()?
                    .parse()
                    .map_err(|_| "--interval-ms takes a number")?
            }
            "--check" => a.check = Some(value()?),
            "--ticket" => a.ticket = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.appid.is_empty() {
        return Err(
            "--appid is required (and --secret, unless the options name a central server)".into(),
        );
    }
    Ok(a)
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("store_peer: {e}");
        std::process::exit(2);
    });
    if let Err(e) = wx_token::register(
        &args.appid,
        Some(args.secret.as_str()).filter(|s| !s.is_empty()),
        args.options.as_deref(),
    ) {
        eprintln!("store_peer: register: {e}");
        std::process::exit(1);
    }
    if let Some(base) = &args.check {
        serve(&args, base);
        wx_token::shutdown();
        std::process::exit(0);
    }
    let get = {
        let ticket = args.ticket.clone();
        move |appid: &str| match &ticket {
            Some(kind) => wx_token::ticket(appid, kind).map(|t| t.access_token),
            None => wx_token::get(appid),
        }
    };
    let rejected = match args.report_rejected {
        true => match get(&args.appid) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("store_peer: first get: {e}");
                std::process::exit(1);
            }
        },
        false => None,
    };
    if let Some(go) = &args.go_file {
        let start = Instant::now();
        while !go.exists() {
            if start.elapsed() > Duration::from_secs(30) {
                eprintln!("store_peer: no go file after 30 s");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (appid, stale) = (args.appid.clone(), rejected.clone());
            let (get, ticket) = (get.clone(), args.ticket.clone());
            std::thread::spawn(move || -> Result<String, wx_token::Error> {
                if let Some(stale) = stale {
                    match &ticket {
                        Some(kind) => wx_token::ticket_invalidate(&appid, kind, &stale)?,
                        None => wx_token::invalidate(&appid, Some(&stale))?,
                    }
                }
                get(&appid)
            })
        })
        .collect();
    let mut failed = false;
    for w in workers {
        match w.join().expect("worker panicked") {
            Ok(token) => println!("{}", fingerprint(&token)),
            Err(e) => {
                eprintln!(
                    "store_peer: {} (errcode {}): {e}",
                    e.status().name(),
                    e.errcode()
                );
                failed = true;
            }
        }
    }
    if args.hold_ms > 0 && !failed {
        // Stay up while the background refresher works, then show what is handed out now.
        std::thread::sleep(Duration::from_millis(args.hold_ms));
        match get(&args.appid) {
            Ok(token) => println!("{}", fingerprint(&token)),
            Err(e) => {
                eprintln!("store_peer: get after holding: {e}");
                failed = true;
            }
        }
    }
    wx_token::shutdown();
    std::process::exit(i32::from(failed));
}

/// The worker loop of `--serve-ms`: get, use at the business API, report changes.
fn serve(args: &Args, base: &str) {
    use std::io::Write;
    let start = Instant::now();
    let mut last = String::new();
    let mut calls = 0u64;
    let out = std::io::stdout();
    while start.elapsed() < Duration::from_millis(args.serve_ms) {
        let seen = match wx_token::get(&args.appid) {
            Ok(token) => {
                calls += 1;
                let body = business_call(base, &token);
                if body.contains("40001") || body.contains("42001") {
                    let code = if body.contains("40001") { 40001 } else { 42001 };
                    // Every rejected call is a line: the tests count them.
                    let _ = writeln!(
                        out.lock(),
                        "{} rejected {code}",
                        start.elapsed().as_millis()
                    );
                }
                format!("tok {}", fingerprint(&token))
            }
            Err(e) => format!("err {}", e.status().name()),
        };
        if seen != last {
            let _ = writeln!(out.lock(), "{} {seen}", start.elapsed().as_millis());
            last = seen;
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
    let _ = writeln!(out.lock(), "done {calls}");
}

/// GET /cgi-bin/get_api_domain_ip on the fake, over plain loopback HTTP.
fn business_call(base: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET /cgi-bin/get_api_domain_ip?access_token={token} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// FNV-1a, 64 bits: trivial to reproduce in any language's test.
fn fingerprint(token: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}
