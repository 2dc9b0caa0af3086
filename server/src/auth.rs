//! Client authentication: bearer keys compared in constant time, and per-client allow-lists.
//!
//! Keys are kept only as SHA-256 digests (a config may even give just the digest), and a
//! presented key is hashed and compared against *every* client's digest with `subtle`, so
//! neither the comparison nor the number of clients tried depends on how much of a key matched.
//! A caller without a valid key gets one answer, `Denied::Unauthenticated`, whatever the appid:
//! it learns nothing about which appids exist. Only a caller that proved its key learns that
//! the key may not ask for this appid (`Denied::AppNotAllowed`), and then the same answer
//! whether the appid is configured or not.

use std::collections::HashSet;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Client;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(key: &str) -> KeyDigest {
        KeyDigest(Sha256::digest(key.as_bytes()).into())
    }

    /// From `sha256sum`-style lowercase or uppercase hex.
    pub fn from_hex(hex: &str) -> Option<KeyDigest> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(KeyDigest(out))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No key, or not a configured one.
    Unauthenticated,
    /// A good key, but not for this appid (or the appid is not configured).
    AppNotAllowed,
}

/// The bearer key from an `Authorization` header value, if it has the `Bearer` scheme.
pub fn bearer(header: Option<&[u8]>) -> Option<&str> {
    let v = std::str::from_utf8(header?).ok()?.trim();
    let (scheme, key) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}

pub struct Authorizer {
    clients: Vec<Client>,
    appids: HashSet<String>,
}

impl Authorizer {
    pub fn new(clients: Vec<Client>, appids: impl IntoIterator<Item = String>) -> Authorizer {
        Authorizer {
            clients,
            appids: appids.into_iter().collect(),
        }
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn has_client(&self, name: &str) -> bool {
        self.clients.iter().any(|c| c.name == name)
    }

    /// The client whose key is in `header`, if it may ask for `appid`.
    pub fn authorize(&self, header: Option<&[u8]>, appid: &str) -> Result<&Client, Denied> {
        let client = self.authenticate(header).ok_or(Denied::Unauthenticated)?;
        // Only an authenticated caller gets this far, so these lookups leak nothing to an
        // outsider; and a key holder gets the same answer for a missing and a forbidden app.
        if !self.appids.contains(appid) {
            return Err(Denied::AppNotAllowed);
        }
        match &client.apps {
            None => Ok(client),
            Some(allowed) if allowed.contains(appid) => Ok(client),
            Some(_) => Err(Denied::AppNotAllowed),
        }
    }

    /// The client holding the key in `header`. Hashes whatever was sent (even nothing), and
    /// compares against every client without stopping at a match.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Option<&Client> {
        let presented = KeyDigest::of(bearer(header).unwrap_or(""));
        let mut found = None;
        for c in &self.clients {
            if c.key.matches(&presented) {
                found = Some(c);
            }
        }
        // An empty key can never be configured (keys are at least 16 bytes), so a missing
        // header never matches; checked explicitly anyway.
        found.filter(|_| bearer(header).is_some())
    }
}

/// Constant-time check of a bearer header against one key digest (the metrics key).
pub fn bearer_matches(header: Option<&[u8]>, expected: &KeyDigest) -> bool {
    let presented = KeyDigest::of(bearer(header).unwrap_or(""));
    expected.matches(&presented) && bearer(header).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: crate::config::Limits = crate::config::Limits {
        requests_per_second: 1,
        requests_burst: 1,
        invalidations_per_minute: 1,
        invalidations_burst: 1,
    };

    fn authz() -> Authorizer {
        let clients = vec![
            Client {
                name: "a".into(),
                key: KeyDigest::of("key-a-0123456789"),
                apps: Some(["wx1".to_string()].into()),
                limits: LIMITS,
            },
            Client {
                name: "ops".into(),
                key: KeyDigest::of("key-ops-01234567"),
                apps: None,
                limits: LIMITS,
            },
        ];
        Authorizer::new(clients, ["wx1".to_string(), "wx2".to_string()])
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some(b"Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some(b"bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some(b"Basic abc")), None);
        assert_eq!(bearer(Some(b"Bearer ")), None);
        assert_eq!(bearer(Some(b"Bearer")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn allow_lists_and_denials() {
        let a = authz();
        assert_eq!(
            a.authorize(Some(b"Bearer key-a-0123456789"), "wx1")
                .unwrap()
                .name,
            "a"
        );
        assert_eq!(
            a.authorize(Some(b"Bearer key-a-0123456789"), "wx2")
                .unwrap_err(),
            Denied::AppNotAllowed
        );
        assert_eq!(
            a.authorize(Some(b"Bearer key-ops-01234567"), "wx2")
                .unwrap()
                .name,
            "ops"
        );
        assert_eq!(
            a.authorize(Some(b"Bearer key-ops-01234567"), "wx3")
                .unwrap_err(),
            Denied::AppNotAllowed
        );
        assert_eq!(
            a.authorize(Some(b"Bearer nope-nope-nope-nope"), "wx3")
                .unwrap_err(),
            Denied::Unauthenticated
        );
        assert_eq!(
            a.authorize(None, "wx1").unwrap_err(),
            Denied::Unauthenticated
        );
    }

    #[test]
    fn hex_digests() {
        let d = KeyDigest::of("hello");
        let hex = "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824";
        assert!(KeyDigest::from_hex(hex).unwrap().matches(&d));
        assert!(
            KeyDigest::from_hex(&hex.to_lowercase())
                .unwrap()
                .matches(&d)
        );
        assert!(KeyDigest::from_hex("abc").is_none());
        assert!(KeyDigest::from_hex(&"zz".repeat(32)).is_none());
    }
}
