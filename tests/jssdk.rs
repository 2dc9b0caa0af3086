//! The JS-SDK signatures through the C ABI, as a C caller sees them.

use std::ffi::{CStr, c_char};

use wx_token::ffi::*;

mod common;
use common::cstr;

fn sig(ticket: &str, nonce: &str, ts: &str, url: &str) -> (i32, String) {
    let (t, n, s, u) = (cstr(ticket), cstr(nonce), cstr(ts), cstr(url));
    let mut out = [0 as c_char; 41];
    let rc = unsafe {
        wx_jssdk_signature(
            t.as_ptr(),
            n.as_ptr(),
            s.as_ptr(),
            u.as_ptr(),
            out.as_mut_ptr(),
            41,
        )
    };
    let hex = unsafe { CStr::from_ptr(out.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    (rc, hex)
}

#[test]
fn wechats_example_through_the_c_abi() {
    assert_eq!(
        sig(
            "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
            "Wm3WZYTPz0wzccnW",
            "1414587457",
            "http://mp.weixin.qq.com#/a?b=c"
        ),
        (WX_OK, "f4d90daf4b3bca3078ab155816175ba34c443a7b".to_owned())
    );
}

#[test]
fn bad_arguments_write_nothing() {
    let t = cstr("t");
    let mut out = [b'x' as c_char; 41];
    let rc = unsafe {
        wx_jssdk_signature(
            t.as_ptr(),
            t.as_ptr(),
            t.as_ptr(),
            t.as_ptr(),
            out.as_mut_ptr(),
            40,
        )
    };
    assert_eq!(rc, WX_BUFFER_TOO_SMALL);
    assert!(out.iter().all(|&c| c == b'x' as c_char), "nothing written");
    let rc = unsafe {
        wx_jssdk_signature(
            std::ptr::null(),
            t.as_ptr(),
            t.as_ptr(),
            t.as_ptr(),
            out.as_mut_ptr(),
            41,
        )
    };
    assert_eq!(rc, WX_INVALID_ARGUMENT);
    let rc = unsafe {
        wx_jssdk_signature(
            t.as_ptr(),
            t.as_ptr(),
            t.as_ptr(),
            t.as_ptr(),
            std::ptr::null_mut(),
            41,
        )
    };
    assert_eq!(rc, WX_INVALID_ARGUMENT);
    let bad = [0xffu8, 0];
    let rc = unsafe {
        wx_jssdk_signature(
            t.as_ptr(),
            bad.as_ptr().cast(),
            t.as_ptr(),
            t.as_ptr(),
            out.as_mut_ptr(),
            41,
        )
    };
    assert_eq!(rc, WX_INVALID_ARGUMENT);
}

#[test]
fn card_signature_sorts_values() {
    let vals = [
        "wx_card_ticket",
        "1414587457",
        "pFS7Fjg8kV1IdDz01r4SQwMkuCKc",
        "Wm3WZYTPz0wzccnW",
    ];
    let owned: Vec<_> = vals.iter().map(|v| cstr(v)).collect();
    let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    let mut out = [0 as c_char; 41];
    assert_eq!(
        unsafe { wx_card_signature(ptrs.as_ptr(), ptrs.len(), out.as_mut_ptr(), 41) },
        WX_OK
    );
    let got = unsafe { CStr::from_ptr(out.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    // Sorted by bytes: digits, then upper case, then lower case.
    let mut sorted = vals.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "1414587457",
            "Wm3WZYTPz0wzccnW",
            "pFS7Fjg8kV1IdDz01r4SQwMkuCKc",
            "wx_card_ticket"
        ]
    );
    let (rc, plain) = sig("", "", "", "");
    assert_eq!(rc, WX_OK);
    assert_ne!(got, plain);
    let concatenated = sha1_smol::Sha1::from(sorted.concat()).digest().to_string();
    assert_eq!(got, concatenated);
    assert_eq!(got.len(), 40);
    assert!(
        got.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(
        unsafe { wx_card_signature(ptrs.as_ptr(), 0, out.as_mut_ptr(), 41) },
        WX_INVALID_ARGUMENT
    );
    let with_null = [ptrs[0], std::ptr::null()];
    assert_eq!(
        unsafe { wx_card_signature(with_null.as_ptr(), 2, out.as_mut_ptr(), 41) },
        WX_INVALID_ARGUMENT
    );
}
