//! Compiles tests/c/abi_test.c against include/wx_token.h as C11 and as C++17 with
//! -Wall -Wextra -Werror, links it to the cdylib, runs it against the fake WeChat, and runs it
//! again under valgrind when valgrind is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{lib_dir, repo};
use wx_fake::{FakeConfig, FakeWechat};

fn compile(compiler: &str, std: &str, out: &Path) {
    let src = repo().join("tests/c/abi_test.c");
    let mut cmd = Command::new(compiler);
    if compiler.ends_with("++") {
        cmd.args(["-x", "c++"]);
    }
    let status = cmd
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-I"])
        .arg(repo().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(out)
        .arg("-L")
        .arg(lib_dir())
        .arg("-lwx_token")
        .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(status.success(), "{compiler} -std={std} failed");
}

fn run(prefix: &[&str], exe: &Path, fake: &FakeWechat, appid: &str) {
    let mut cmd = Command::new(prefix.first().map_or(exe.as_os_str(), |p| p.as_ref()));
    cmd.args(prefix.iter().skip(1))
        .env("WX_TEST_API_BASE", fake.base_url())
        .env("WX_TEST_APPID", appid)
        .env("WX_TEST_SECRET", "c-secret");
    if !prefix.is_empty() {
        cmd.arg(exe);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        exe.display()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn c11_and_cxx17_programs_use_the_abi() {
    let fake = FakeWechat::start(FakeConfig::default()).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (compiler, std, name) in [
        ("cc", "c11", "abi_test_c"),
        ("c++", "c++17", "abi_test_cxx"),
    ] {
        let exe = dir.join(name);
        compile(compiler, std, &exe);
        let appid = format!("wx_c_{name}");
        fake.add_app(&appid, "c-secret");
        run(&[], &exe, &fake, &appid);
    }
}

#[test]
fn c_program_is_clean_under_valgrind() {
    if !has("valgrind") {
        eprintln!("valgrind not installed: skipped (the README's test command installs it)");
        return;
    }
    let fake = FakeWechat::start(FakeConfig::default()).unwrap();
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abi_test_valgrind");
    compile("cc", "c11", &exe);
    fake.add_app("wx_c_valgrind", "c-secret");
    run(
        &[
            "valgrind",
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ],
        &exe,
        &fake,
        "wx_c_valgrind",
    );
}
