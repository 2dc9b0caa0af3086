//! The top README's C and C++ samples, built with the README's own build lines and run against
//! the fake WeChat: a reader who copies them gets a program that compiles, finds
//! libwx_token.so at run time, and works.
//!
//! Samples are the code blocks marked `<!-- test: LANG -->`, pulled out by
//! scripts/readme_samples.py. The build lines are run verbatim in a directory laid out like the
//! repository after `cargo build --release` (include/, bindings/cpp/, target/release/), where
//! target/release is this test's own build of the library.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{lib_dir, repo};
use wx_fake::{FakeConfig, FakeWechat};

/// Extracts the README's samples of `lang` into `dir`; returns (name, path) pairs.
fn extract(lang: &str, dir: &Path) -> Vec<(String, PathBuf)> {
    let out = Command::new("python3")
        .arg(repo().join("scripts/readme_samples.py"))
        .args(["extract", "README.md", "--lang", lang, "--out"])
        .arg(dir)
        .current_dir(repo())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "extracting {lang} samples: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            (
                f.next().unwrap().to_owned(),
                PathBuf::from(f.next().unwrap()),
            )
        })
        .collect()
}

/// A directory laid out like the repository after a release build, with the sample in it.
fn workspace(name: &str, sample: &Path) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bindings")).unwrap();
    std::fs::create_dir_all(dir.join("target")).unwrap();
    let link = |to: PathBuf, at: &str| std::os::unix::fs::symlink(to, dir.join(at)).unwrap();
    link(repo().join("include"), "include");
    link(repo().join("bindings/cpp"), "bindings/cpp");
    link(lib_dir(), "target/release");
    std::fs::copy(sample, dir.join(sample.file_name().unwrap())).unwrap();
    dir
}

/// Runs the compiler lines (`cc ...`, `c++ ...`) of a README build block, verbatim plus strict
/// warnings, in `dir`.
fn build(block: &Path, dir: &Path) {
    let text = std::fs::read_to_string(block).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("cc ") || l.starts_with("c++ "))
        .collect();
    assert!(
        !lines.is_empty(),
        "{} has no compiler line",
        block.display()
    );
    for line in lines {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{line} -Wall -Wextra -Werror -pedantic"))
            .current_dir(dir)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{line}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs the built ./app with only `env` (no LD_LIBRARY_PATH: the binary must find the library).
fn run(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(dir.join("app"));
    cmd.env_clear().current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn samples_of(lang: &str) -> (PathBuf, PathBuf) {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-samples-{lang}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let code = extract(lang, &tmp.join(lang));
    assert_eq!(code.len(), 1, "one {lang} sample: {code:?}");
    let builds = extract("sh", &tmp.join("sh"));
    let build = builds
        .into_iter()
        .find(|(name, _)| *name == format!("{}_build", if lang == "c" { "c" } else { "cpp" }))
        .expect("a build block for the sample");
    (code[0].1.clone(), build.1)
}

fn check_app(dir: &Path, env: &[(&str, &str)], appid: &str) {
    let out = run(dir, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "token: 136 bytes", "{stderr}");
    // Without credentials the sample refuses to run (never a built-in default secret).
    let bare = run(dir, &[("WX_APPID", appid)]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bare.stderr).contains("WX_SECRET"));
}

/// A fake WeChat that knows `appid`, and the `lang` sample built in its workspace.
fn built(lang: &str, appid: &str) -> (FakeWechat, PathBuf) {
    let fake = FakeWechat::start(FakeConfig::default()).unwrap();
    fake.add_app(appid, "readme-secret");
    let (code, build_block) = samples_of(lang);
    let dir = workspace(lang, &code);
    build(&build_block, &dir);
    (fake, dir)
}

#[test]
fn the_c_sample_builds_with_the_readme_line_and_runs() {
    let (fake, dir) = built("c", "wx_readme_c");
    let options = format!(r#"{{"api_base":"{}"}}"#, fake.base_url());
    let env = [
        ("WX_APPID", "wx_readme_c"),
        ("WX_SECRET", "readme-secret"),
        ("WX_OPTIONS", options.as_str()),
    ];
    check_app(&dir, &env, "wx_readme_c");
    let stderr = String::from_utf8(run(&dir, &env).stderr).unwrap();
    assert!(
        stderr.contains("wx_token token_fetched app=wx_readme_c errcode=0"),
        "the event callback reports the fetch: {stderr}"
    );
    assert!(!stderr.contains("readme-secret"));
}

#[test]
fn the_cpp_sample_builds_with_the_readme_line_and_runs() {
    let (fake, dir) = built("cpp", "wx_readme_cpp");
    let base = fake.base_url();
    check_app(
        &dir,
        &[
            ("WX_APPID", "wx_readme_cpp"),
            ("WX_SECRET", "readme-secret"),
            ("WX_API_BASE", base.as_str()),
        ],
        "wx_readme_cpp",
    );
}
