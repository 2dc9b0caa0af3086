//! server/README.md's "Try it locally" block (marked `<!-- test: sh name=try_it -->`, pulled out
//! by scripts/readme_samples.py) run as it stands: the fake WeChat, wx-tokend from its own
//! config, and the curl lines against it. Only the port changes (8443 may be taken), and the
//! `cargo build` line is skipped (the binaries are this test run's own builds).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_readme_try_it_block_runs_and_its_curl_lines_get_what_it_says() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-readme");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("samples")).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("scripts/readme_samples.py"))
        .args(["extract", "server/README.md", "--lang", "sh", "--out"])
        .arg(tmp.join("samples"))
        .current_dir(repo())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = std::fs::read_to_string(tmp.join("samples/try_it.sh")).expect("a try_it block");
    assert!(
        block.lines().filter(|l| l.starts_with("curl ")).count() >= 4,
        "{block}"
    );

    // A free port for 127.0.0.1:8443, and the binaries where the README expects them.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("cargo "))
        .map(|l| l.replace("127.0.0.1:8443", &format!("127.0.0.1:{port}")) + "\n")
        .collect();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_wx-tokend")).parent().unwrap();
    let fake = bin_dir.join("wx-fake-wechat");
    assert!(
        fake.exists(),
        "{} missing: cargo build -p wx_fake",
        fake.display()
    );
    let work = tmp.join("work");
    std::fs::create_dir_all(work.join("target")).unwrap();
    std::os::unix::fs::symlink(bin_dir, work.join("target/debug")).unwrap();
    let run = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&work)
        .env_remove("WX_SECRET")
        .env_remove("WX_TOKEND_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let log = std::fs::read_to_string(work.join("tokend.log")).unwrap_or_default();
    assert!(
        run.status.success(),
        "{stdout}\n{stderr}\ntokend.log:\n{log}"
    );

    assert!(
        stdout.contains("configuration OK"),
        "--check-config: {stdout}"
    );
    // One JSON line per curl: healthz, the token, the forced refresh's new token, the 401
    // (the other lines are the fake's and --check-config's).
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{stdout}")))
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0]["status"], "ok");
    let first = lines[1]["access_token"].as_str().expect("a token");
    let second = lines[2]["access_token"].as_str().expect("a token");
    assert!(!first.is_empty() && first != second, "{stdout}");
    assert!(lines[1]["expires_in"].as_u64().unwrap() > 7000);
    assert_eq!(lines[3]["error"], "unauthorized");
    // The server logged the requests, and never the key or a whole token.
    assert!(log.contains("\"msg\":\"listening\""), "{log}");
    assert!(!log.contains(first) && !log.contains(second), "{log}");
    assert!(!log.contains("demo_secret"), "{log}");
}
