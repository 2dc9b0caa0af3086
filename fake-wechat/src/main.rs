//! `wx-fake-wechat`: the fake as a child process, for tests in other languages.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use wx_fake::{FakeConfig, FakeWechat};

const DEFAULT_APP: (&str, &str) = ("wx_demo_appid", "demo_secret");

const USAGE: &str = "\
usage: wx-fake-wechat [options]

Serves fake WeChat token endpoints on a loopback address until SIGTERM/SIGINT.
Prints `listening on http://127.0.0.1:PORT` on stdout once ready.

options:
  --listen ADDR          loopback address to bind (default 127.0.0.1:0 = ephemeral port)
  --app APPID:SECRET     register an app (repeatable; default: wx_demo_appid, see README)
  --wecom CORPID:SECRET[:AGENTID]
                         register a WeCom corp secret, with its app's agentid (repeatable)
  --lifetime SECS        expires_in of new tokens (default 7200)
  --ticket-lifetime SECS expires_in of new JS-SDK tickets (default 7200)
  --token-len N          length of new tokens, 1..=1024 (default 136)
  --overlap SECS         how long a superseded token stays valid (default 300)
  --delay-ms MS          delay every token answer (default 0)
  --port-file PATH       also write the base URL to PATH (atomically)
  --exit-on-stdin-eof    exit when stdin closes (so a dead parent leaves no orphan)
  --verbose              log `METHOD PATH STATUS` per request to stderr
  -h, --help             show this help
";

struct Cli {
    listen: String,
    config: FakeConfig,
    port_file: Option<PathBuf>,
    exit_on_stdin_eof: bool,
    verbose: bool,
}

enum Parsed {
    Run(Cli),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut cli = Cli {
        listen: "127.0.0.1:0".into(),
        config: FakeConfig::default(),
        port_file: None,
        exit_on_stdin_eof: false,
        verbose: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--listen" => cli.listen = value()?,
            "--app" => {
                let v = value()?;
                // Appids never contain ':', secrets might.
                let (appid, secret) = v
                    .split_once(':')
                    .filter(|(a, s)| !a.is_empty() && !s.is_empty())
                    .ok_or("--app wants APPID:SECRET")?;
                cli.config
                    .apps
                    .push((appid.to_string(), secret.to_string()));
            }
            "--wecom" => {
                let v = value()?;
                let mut parts = v.splitn(3, ':');
                let (corpid, secret) = match (parts.next(), parts.next()) {
                    (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => (c, s),
                    _ => return Err("--wecom wants CORPID:SECRET[:AGENTID]".into()),
                };
                let agentid = parts.next().map(|a| number(&flag, a)).transpose()?;
                cli.config
                    .wecom
                    .push((corpid.to_string(), secret.to_string(), agentid));
            }
            "--ticket-lifetime" => cli.config.ticket_lifetime_secs = number(&flag, &value()?)?,
            "--lifetime" => cli.config.lifetime_secs = number(&flag, &value()?)?,
            "--token-len" => cli.config.token_len = number(&flag, &value()?)?,
            "--overlap" => cli.config.overlap_secs = number(&flag, &value()?)?,
            "--delay-ms" => cli.config.delay_ms = number(&flag, &value()?)?,
            "--port-file" => cli.port_file = Some(PathBuf::from(value()?)),
            "--exit-on-stdin-eof" => cli.exit_on_stdin_eof = true,
            "--verbose" => cli.verbose = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
        if inline.is_some() && matches!(flag.as_str(), "--exit-on-stdin-eof" | "--verbose") {
            return Err(format!("{flag} takes no value"));
        }
    }
    Ok(Parsed::Run(cli))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag} wants a non-negative integer, got {v:?}"))
}

/// Readers poll for the file; a rename makes it appear complete or not at all.
fn write_port_file(path: &Path, base_url: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, base_url)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn main() -> ExitCode {
    let mut cli = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wx-fake-wechat: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cli.config.apps.is_empty() {
        cli.config
            .apps
            .push((DEFAULT_APP.0.to_string(), DEFAULT_APP.1.to_string()));
        // The secret itself is documented in the README; logs never carry secrets.
        eprintln!(
            "wx-fake-wechat: no --app given; registered default app {} (demo secret, see README)",
            DEFAULT_APP.0
        );
    }
    let fake = match FakeWechat::start_on(&cli.listen, cli.config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wx-fake-wechat: cannot listen on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    fake.set_verbose(cli.verbose);
    let base_url = fake.base_url();
    if let Some(path) = &cli.port_file {
        if let Err(e) = write_port_file(path, &base_url) {
            eprintln!("wx-fake-wechat: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    {
        // A parent that stopped reading stdout must not kill the fake.
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening on {base_url}");
        let _ = out.flush();
    }

    let (done_tx, done_rx) = mpsc::channel::<()>();
    if cli.exit_on_stdin_eof {
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = io::stdin();
            while let Ok(n) = stdin.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            let _ = done_tx.send(());
        });
    } else {
        // Keep the sender alive forever so recv() blocks until a signal ends us.
        std::mem::forget(done_tx);
    }
    let _ = done_rx.recv();
    if cli.verbose {
        eprintln!("wx-fake-wechat: stdin closed, exiting");
    }
    fake.stop();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(cli) => Ok(cli),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_all_flags() {
        let cli = parse(&[
            "--listen",
            "127.0.0.1:9999",
            "--app",
            "a:b:c",
            "--app=x:y",
            "--wecom",
            "ww1:sec:1000002",
            "--wecom=ww1:other",
            "--ticket-lifetime",
            "9",
            "--lifetime",
            "5",
            "--token-len=512",
            "--overlap",
            "1",
            "--delay-ms",
            "7",
            "--port-file",
            "/tmp/p",
            "--exit-on-stdin-eof",
            "--verbose",
        ])
        .unwrap();
        assert_eq!(cli.listen, "127.0.0.1:9999");
        assert_eq!(
            cli.config.apps,
            vec![("a".into(), "b:c".into()), ("x".into(), "y".into())]
        );
        assert_eq!(
            (
                cli.config.lifetime_secs,
                cli.config.token_len,
                cli.config.overlap_secs,
                cli.config.delay_ms
            ),
            (5, 512, 1, 7)
        );
        assert_eq!(cli.port_file, Some(PathBuf::from("/tmp/p")));
        assert_eq!(
            cli.config.wecom,
            vec![
                ("ww1".into(), "sec".into(), Some(1000002)),
                ("ww1".into(), "other".into(), None)
            ]
        );
        assert_eq!(cli.config.ticket_lifetime_secs, 9);
        assert!(cli.exit_on_stdin_eof && cli.verbose);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&["--app", "nocolon"]).is_err());
        assert!(parse(&["--app", ":s"]).is_err());
        assert!(parse(&["--lifetime", "-1"]).is_err());
        assert!(parse(&["--lifetime"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--verbose=1"]).is_err());
        assert_eq!(parse(&["--help"]).err().as_deref(), Some("help"));
    }
}
