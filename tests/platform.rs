//! Issue #15: platform-specific code lives in clearly separated `cfg(unix)` modules, so a port
//! adds the other side and touches nothing else. This test reads the engine's sources and fails
//! when an OS API (`libc::`, `std::os::`) is used anywhere but in those modules.

use std::path::{Path, PathBuf};

/// The modules that hold the unix side: `src/platform/unix.rs` (behind `#[cfg(unix)]` in
/// `src/platform/mod.rs`) and the file store's `src/store/fs_unix.rs` (behind `#[cfg(unix)]` in
/// `src/store/mod.rs`).
const UNIX_MODULES: &[&str] = &["src/platform/unix.rs", "src/store/fs_unix.rs"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn os_apis_are_used_only_in_the_cfg_unix_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 10, "found the engine's sources: {files:?}");
    let mut leaks = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if UNIX_MODULES.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("libc::") || code.contains("std::os::") {
                leaks.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "OS APIs outside {UNIX_MODULES:?} (move them behind a function there):\n{}",
        leaks.join("\n")
    );
    // The modules named above really are the cfg(unix) side.
    let gate = |module: &str, name: &str| {
        let text = std::fs::read_to_string(root.join(module)).unwrap();
        assert!(
            text.contains(&format!("#[cfg(unix)]\nmod {name};")),
            "{module} declares `mod {name}` behind #[cfg(unix)]"
        );
    };
    gate("src/platform/mod.rs", "unix");
    gate("src/store/mod.rs", "fs_unix");
}
