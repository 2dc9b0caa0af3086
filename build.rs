//! Generates the C header from the `ffi` module with the pinned cbindgen.
//!
//! The header is written to OUT_DIR on every build; `tests/header.rs` fails when the checked-in
//! `include/wx_token.h` differs, and `WX_TOKEN_UPDATE_HEADER=1 cargo build` refreshes it.

use std::path::PathBuf;

fn main() {
    // Give the cdylib a soname, so a binding that preloads it by absolute path (dlopen) makes
    // the runtimes' later lookups of "libwx_token.so" (Mono, CoreCLR) find it. The install
    // script sets a versioned soname through WX_TOKEN_SONAME.
    println!("cargo:rerun-if-env-changed=WX_TOKEN_SONAME");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let soname =
            std::env::var("WX_TOKEN_SONAME").unwrap_or_else(|_| "libwx_token.so".to_owned());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=WX_TOKEN_UPDATE_HEADER");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("wx_token.h");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = match cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            // A half-edited source tree should not stop `cargo check`; rustc reports the error.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    bindings.write_to_file(&out);
    if std::env::var_os("WX_TOKEN_UPDATE_HEADER").is_some() {
        bindings.write_to_file(crate_dir.join("include/wx_token.h"));
    }
}
