//! The JS-SDK's signatures, computed the way WeChat's documentation defines them, and the
//! nonces that go into them. Pure functions: no engine state, no I/O but the OS's CSPRNG.

use crate::error::Error;
use crate::status::Status;

/// `sha1("jsapi_ticket=" T "&noncestr=" N "&timestamp=" TS "&url=" URL)` in lowercase hex, the
/// values raw (no URL-encoding), the URL cut at its first `#` (the browser never sends the
/// fragment, so a signature over it could never match). Serves `wx.config` (mp, and WeCom
/// with the corp ticket) and `wx.agentConfig` (WeCom, with the agent ticket) alike.
pub fn signature(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(page, _)| page);
    let mut h = sha1_smol::Sha1::new();
    for part in [
        "jsapi_ticket=",
        ticket,
        "&noncestr=",
        noncestr,
        "&timestamp=",
        timestamp,
        "&url=",
        url,
    ] {
        h.update(part.as_bytes());
    }
    h.digest().to_string()
}

/// cardSign: the values (api_ticket, timestamp, card_id, code, openid, nonce_str, and any
/// others the page passes) sorted lexicographically by their bytes, concatenated without
/// separators, SHA-1 in lowercase hex.
pub fn card_signature(values: &[&str]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mut h = sha1_smol::Sha1::new();
    for v in sorted {
        h.update(v.as_bytes());
    }
    h.digest().to_string()
}

/// Length of the nonces `config` makes: WeChat accepts up to 32 characters; 16 of an
/// alphabet of 62 carry 95 bits.
pub const NONCE_LEN: usize = 16;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh nonce from the OS's CSPRNG (getrandom(2)), `[A-Za-z0-9]{16}`, unbiased (bytes of
/// 248 and above are drawn again, so every character is equally likely).
pub fn nonce() -> Result<String, Error> {
    let mut out = String::with_capacity(NONCE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < NONCE_LEN {
        getrandom::fill(&mut buf).map_err(|e| {
            Error::new(
                Status::Network,
                format!("the OS random number generator failed: {e}"),
            )
        })?;
        for &b in &buf {
            if out.len() == NONCE_LEN {
                break;
            }
            if b < 248 {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WeChat's documented example (JS-SDK documentation, appendix 1).
    #[test]
    fn wechats_published_vector() {
        assert_eq!(
            signature(
                "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
                "Wm3WZYTPz0wzccnW",
                "1414587457",
                "http://mp.weixin.qq.com"
            ),
            "f4d90daf4b3bca3078ab155816175ba34c443a7b"
        );
    }

    #[test]
    fn the_fragment_is_not_signed_and_values_are_raw() {
        let plain = signature("t", "n", "1", "https://a.example/p?x=1&y=%20");
        assert_eq!(
            signature("t", "n", "1", "https://a.example/p?x=1&y=%20#/route?z=2"),
            plain
        );
        assert_ne!(
            signature("t", "n", "1", "https://a.example/p?x=1&y= "),
            plain
        );
        // The known SHA-1 of the exact string, so the concatenation itself is pinned.
        assert_eq!(
            signature("", "", "", ""),
            sha1_smol::Sha1::from("jsapi_ticket=&noncestr=&timestamp=&url=")
                .digest()
                .to_string()
        );
    }

    #[test]
    fn sha1_known_vectors() {
        // FIPS 180 examples.
        assert_eq!(
            sha1_smol::Sha1::from("abc").digest().to_string(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            sha1_smol::Sha1::from("").digest().to_string(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }

    #[test]
    fn card_sign_sorts_the_values() {
        let values = ["ticket_X", "1414587457", "pFS7Fjg", "", "Wm3W"];
        // In the order given, the hash differs: the sort is what makes it cardSign.
        let unsorted = sha1_smol::Sha1::from("ticket_X1414587457pFS7FjgWm3W")
            .digest()
            .to_string();
        // Sorted: "", "1414587457", "Wm3W", "pFS7Fjg", "ticket_X" (bytes: digits < upper < lower).
        let joined = sha1_smol::Sha1::from("1414587457Wm3WpFS7Fjgticket_X")
            .digest()
            .to_string();
        assert_eq!(card_signature(&values), joined);
        assert_ne!(card_signature(&values), unsorted);
        let mut reversed = values;
        reversed.reverse();
        assert_eq!(
            card_signature(&reversed),
            joined,
            "order of the input is irrelevant"
        );
    }

    #[test]
    fn nonces_are_fresh_and_of_the_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let n = nonce().unwrap();
            assert_eq!(n.len(), NONCE_LEN);
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(seen.insert(n));
        }
    }
}
