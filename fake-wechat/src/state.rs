//! Apps, the tokens issued to them, and WeChat's rules for when a token dies.
//!
//! Every method takes `now` so the rules can be unit-tested across hours of
//! simulated time without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::token::TokenRng;

/// Live-tunable knobs; new values apply to tokens issued afterwards.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lifetime_secs: u64,
    pub token_len: usize,
    pub overlap_secs: u64,
    pub delay_ms: u64,
    /// `expires_in` of JS-SDK tickets (mp and WeCom), in seconds.
    pub ticket_lifetime_secs: u64,
}

pub const MIN_TOKEN_LEN: usize = 1;
pub const MAX_TOKEN_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    GrantType,
    AppidMissing,
    SecretMissing,
    UnknownAppid,
    WrongSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Valid,
    /// Issued by us but past its expiry or its post-rotation overlap (42001).
    Expired,
    /// Never issued, or revoked (40001).
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    /// False when the stable endpoint handed back the token it already had.
    pub fresh: bool,
}

struct TokenRecord {
    appid: String,
    /// Earliest of: natural expiry, end of overlap after being superseded,
    /// forced expiry. Kept as one instant because only the minimum matters.
    valid_until: Instant,
    revoked: bool,
}

/// The last two tokens of one kind (classic or stable) of one app. Older ones
/// are already capped in the token table and need no tracking.
#[derive(Default)]
struct Lineage {
    current: Option<String>,
    previous: Option<String>,
}

struct App {
    secret: String,
    classic: Lineage,
    stable: Lineage,
    latest: Option<String>,
}

pub struct State {
    pub settings: Settings,
    apps: HashMap<String, App>,
    tokens: HashMap<String, TokenRecord>,
    rng: TokenRng,
    /// WeCom corps and JS-SDK tickets (`crate::tickets`).
    pub(crate) jssdk: crate::tickets::Jssdk,
}

/// `now + secs`, saturating instead of panicking on absurd lifetimes.
pub(crate) fn after(now: Instant, secs: u64) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(Duration::from_secs(secs))
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

impl State {
    pub fn new(settings: Settings) -> State {
        State {
            settings,
            apps: HashMap::new(),
            tokens: HashMap::new(),
            rng: TokenRng::new(),
            jssdk: Default::default(),
        }
    }

    /// Registers an app, or changes its secret; its tokens survive either way.
    pub fn add_app(&mut self, appid: &str, secret: &str) {
        match self.apps.get_mut(appid) {
            Some(app) => app.secret = secret.to_string(),
            None => {
                self.apps.insert(
                    appid.to_string(),
                    App {
                        secret: secret.to_string(),
                        classic: Lineage::default(),
                        stable: Lineage::default(),
                        latest: None,
                    },
                );
            }
        }
    }

    /// Checks in the order errors are reported; empty counts as missing.
    pub fn authenticate(
        &self,
        grant_type: Option<&str>,
        appid: Option<&str>,
        secret: Option<&str>,
    ) -> Result<(), CredentialError> {
        if grant_type != Some("client_credential") {
            return Err(CredentialError::GrantType);
        }
        let appid = appid
            .filter(|a| !a.is_empty())
            .ok_or(CredentialError::AppidMissing)?;
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or(CredentialError::SecretMissing)?;
        let app = self.apps.get(appid).ok_or(CredentialError::UnknownAppid)?;
        if app.secret != secret {
            return Err(CredentialError::WrongSecret);
        }
        Ok(())
    }

    /// Classic `/cgi-bin/token`: always a new token; the previous one keeps
    /// working for the overlap, anything older dies now.
    /// The caller must have authenticated `appid`.
    pub fn issue_classic(&mut self, appid: &str, now: Instant) -> Issued {
        let token = self.mint(appid, now);
        let overlap_end = after(now, self.settings.overlap_secs);
        let app = self.apps.get_mut(appid).expect("authenticated app");
        let (older, previous) = rotate(&mut app.classic, token.clone());
        self.cap(older, now);
        self.cap(previous, overlap_end);
        self.issued(token)
    }

    /// `/cgi-bin/stable_token`. Without `force`, the current token is reused
    /// while it has more than the overlap left; a replacement leaves the old
    /// one to die naturally. With `force`, rotation works like the classic one.
    pub fn stable_token(&mut self, appid: &str, force: bool, now: Instant) -> Issued {
        let overlap = Duration::from_secs(self.settings.overlap_secs);
        let app = self.apps.get(appid).expect("authenticated app");
        if !force {
            if let Some(current) = &app.stable.current {
                if let Some(rec) = self.tokens.get(current).filter(|r| !r.revoked) {
                    let left = rec.valid_until.saturating_duration_since(now);
                    if left > overlap {
                        return Issued {
                            token: current.clone(),
                            expires_in: left.as_secs(),
                            fresh: false,
                        };
                    }
                }
            }
        }
        let token = self.mint(appid, now);
        let app = self.apps.get_mut(appid).expect("authenticated app");
        let (older, previous) = rotate(&mut app.stable, token.clone());
        if force {
            self.cap(older, now);
            self.cap(previous, after(now, self.settings.overlap_secs));
        }
        self.issued(token)
    }

    pub fn status(&self, token: &str, now: Instant) -> (TokenStatus, Option<&str>) {
        match self.tokens.get(token) {
            None => (TokenStatus::Invalid, None),
            Some(rec) if rec.revoked => (TokenStatus::Invalid, Some(&rec.appid)),
            Some(rec) if now >= rec.valid_until => (TokenStatus::Expired, Some(&rec.appid)),
            Some(rec) => (TokenStatus::Valid, Some(&rec.appid)),
        }
    }

    pub fn revoke(&mut self, token: &str) {
        if let Some(rec) = self.tokens.get_mut(token) {
            rec.revoked = true;
        }
    }

    /// As if the tokens' two hours had passed: they answer 42001, and the next
    /// normal stable_token request must issue a new one.
    pub fn expire_app(&mut self, appid: &str, now: Instant) {
        for rec in self.tokens.values_mut().filter(|r| r.appid == appid) {
            rec.valid_until = rec.valid_until.min(now);
        }
    }

    pub fn current_token(&self, appid: &str) -> Option<String> {
        self.apps.get(appid)?.latest.clone()
    }

    /// A fresh random string of the configured token length (tickets use it too).
    pub(crate) fn random(&mut self, len: usize) -> String {
        self.rng.token(len)
    }

    pub(crate) fn is_mp_app(&self, appid: &str) -> bool {
        self.apps.contains_key(appid) && !appid.contains('#')
    }

    fn mint(&mut self, appid: &str, now: Instant) -> String {
        let len = self.settings.token_len;
        // Collisions only become possible with tiny test lengths; retrying
        // keeps them unique until the space itself runs out.
        let mut token = self.rng.token(len);
        for _ in 0..1000 {
            if !self.tokens.contains_key(&token) {
                break;
            }
            token = self.rng.token(len);
        }
        self.tokens.insert(
            token.clone(),
            TokenRecord {
                appid: appid.to_string(),
                valid_until: after(now, self.settings.lifetime_secs),
                revoked: false,
            },
        );
        if let Some(app) = self.apps.get_mut(appid) {
            app.latest = Some(token.clone());
        }
        token
    }

    fn issued(&self, token: String) -> Issued {
        Issued {
            token,
            expires_in: self.settings.lifetime_secs,
            fresh: true,
        }
    }

    fn cap(&mut self, token: Option<String>, until: Instant) {
        if let Some(rec) = token.and_then(|t| self.tokens.get_mut(&t)) {
            rec.valid_until = rec.valid_until.min(until);
        }
    }
}

/// Makes `new` current; returns (the one that was previous, the one that was current).
fn rotate(lineage: &mut Lineage, new: String) -> (Option<String>, Option<String>) {
    let older = lineage.previous.take();
    lineage.previous = lineage.current.replace(new);
    (older, lineage.previous.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lifetime: u64, overlap: u64) -> State {
        let mut s = State::new(Settings {
            lifetime_secs: lifetime,
            token_len: 32,
            overlap_secs: overlap,
            delay_ms: 0,
            ticket_lifetime_secs: 7200,
        });
        s.add_app("app", "secret");
        s.add_app("other", "pw");
        s
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn authentication_errors_in_order() {
        let s = state(7200, 300);
        let cc = Some("client_credential");
        use CredentialError::*;
        assert_eq!(
            s.authenticate(None, Some("app"), Some("secret")),
            Err(GrantType)
        );
        assert_eq!(
            s.authenticate(Some("x"), Some("app"), Some("secret")),
            Err(GrantType)
        );
        assert_eq!(s.authenticate(cc, None, Some("secret")), Err(AppidMissing));
        assert_eq!(
            s.authenticate(cc, Some(""), Some("secret")),
            Err(AppidMissing)
        );
        assert_eq!(s.authenticate(cc, Some("app"), None), Err(SecretMissing));
        assert_eq!(
            s.authenticate(cc, Some("nope"), Some("secret")),
            Err(UnknownAppid)
        );
        assert_eq!(
            s.authenticate(cc, Some("app"), Some("pw")),
            Err(WrongSecret)
        );
        assert_eq!(s.authenticate(cc, Some("app"), Some("secret")), Ok(()));
    }

    #[test]
    fn classic_previous_survives_overlap_older_dies_at_once() {
        let mut s = state(7200, 300);
        let t0 = Instant::now();
        let a = s.issue_classic("app", t0).token;
        let b = s.issue_classic("app", t0 + secs(10)).token;
        assert_eq!(s.status(&a, t0 + secs(10)).0, TokenStatus::Valid);
        assert_eq!(s.status(&a, t0 + secs(309)).0, TokenStatus::Valid);
        assert_eq!(s.status(&a, t0 + secs(310)).0, TokenStatus::Expired);
        let c = s.issue_classic("app", t0 + secs(20)).token;
        assert_eq!(
            s.status(&a, t0 + secs(20)).0,
            TokenStatus::Expired,
            "older than previous"
        );
        assert_eq!(s.status(&b, t0 + secs(319)).0, TokenStatus::Valid);
        assert_eq!(s.status(&b, t0 + secs(320)).0, TokenStatus::Expired);
        assert_eq!(s.status(&c, t0 + secs(7219)).0, TokenStatus::Valid);
        assert_eq!(s.status(&c, t0 + secs(7220)).0, TokenStatus::Expired);
        assert_eq!(s.current_token("app"), Some(c));
    }

    #[test]
    fn classic_overlap_never_extends_natural_expiry() {
        let mut s = state(100, 300);
        let t0 = Instant::now();
        let a = s.issue_classic("app", t0).token;
        s.issue_classic("app", t0 + secs(90));
        assert_eq!(s.status(&a, t0 + secs(99)).0, TokenStatus::Valid);
        assert_eq!(s.status(&a, t0 + secs(100)).0, TokenStatus::Expired);
    }

    #[test]
    fn stable_reuses_until_overlap_window_then_replaces() {
        let mut s = state(7200, 300);
        let t0 = Instant::now();
        let first = s.stable_token("app", false, t0);
        assert!(first.fresh);
        assert_eq!(first.expires_in, 7200);
        let again = s.stable_token("app", false, t0 + secs(1000));
        assert_eq!(again.token, first.token);
        assert!(!again.fresh);
        assert_eq!(again.expires_in, 6200);
        // Exactly 300 s left is not "more than the overlap".
        let renewed = s.stable_token("app", false, t0 + secs(6900));
        assert_ne!(renewed.token, first.token);
        assert_eq!(renewed.expires_in, 7200);
        // The old one lives out its own life, no shorter.
        assert_eq!(
            s.status(&first.token, t0 + secs(7199)).0,
            TokenStatus::Valid
        );
        assert_eq!(
            s.status(&first.token, t0 + secs(7200)).0,
            TokenStatus::Expired
        );
    }

    #[test]
    fn stable_force_rotates_with_overlap() {
        let mut s = state(7200, 300);
        let t0 = Instant::now();
        let a = s.stable_token("app", false, t0).token;
        let b = s.stable_token("app", true, t0 + secs(5));
        assert!(b.fresh);
        assert_ne!(a, b.token);
        assert_eq!(s.status(&a, t0 + secs(304)).0, TokenStatus::Valid);
        assert_eq!(s.status(&a, t0 + secs(305)).0, TokenStatus::Expired);
        // Normal mode now reuses the forced one.
        assert_eq!(s.stable_token("app", false, t0 + secs(6)).token, b.token);
        let c = s.stable_token("app", true, t0 + secs(7)).token;
        assert_eq!(s.status(&a, t0 + secs(7)).0, TokenStatus::Expired);
        assert_eq!(s.status(&b.token, t0 + secs(306)).0, TokenStatus::Valid);
        assert_eq!(s.current_token("app"), Some(c));
    }

    #[test]
    fn classic_and_stable_are_independent() {
        let mut s = state(7200, 0);
        let t0 = Instant::now();
        let st = s.stable_token("app", false, t0).token;
        s.issue_classic("app", t0);
        s.issue_classic("app", t0);
        assert_eq!(s.status(&st, t0).0, TokenStatus::Valid);
        let cl = s.current_token("app").unwrap();
        s.stable_token("app", true, t0);
        assert_eq!(s.status(&cl, t0).0, TokenStatus::Valid);
        assert_eq!(s.status(&st, t0).0, TokenStatus::Expired, "zero overlap");
    }

    #[test]
    fn revoke_and_expire() {
        let mut s = state(7200, 300);
        let t0 = Instant::now();
        let a = s.stable_token("app", false, t0).token;
        let o = s.issue_classic("other", t0).token;
        s.revoke(&a);
        assert_eq!(s.status(&a, t0), (TokenStatus::Invalid, Some("app")));
        // A revoked stable token is not handed out again.
        let b = s.stable_token("app", false, t0).token;
        assert_ne!(a, b);
        s.expire_app("app", t0 + secs(1));
        assert_eq!(s.status(&b, t0 + secs(1)).0, TokenStatus::Expired);
        assert_eq!(
            s.status(&a, t0 + secs(1)).0,
            TokenStatus::Invalid,
            "revoked stays revoked"
        );
        assert_eq!(
            s.status(&o, t0 + secs(1)).0,
            TokenStatus::Valid,
            "other apps untouched"
        );
        assert_ne!(s.stable_token("app", false, t0 + secs(1)).token, b);
        assert_eq!(s.status("never-issued", t0), (TokenStatus::Invalid, None));
    }

    #[test]
    fn tokens_stay_unique_with_short_lengths() {
        let mut s = state(7200, 300);
        s.settings.token_len = 2;
        let t0 = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            assert!(seen.insert(s.issue_classic("app", t0).token));
        }
    }

    #[test]
    fn absurd_lifetime_does_not_panic() {
        let mut s = state(u64::MAX, u64::MAX);
        let t0 = Instant::now();
        let a = s.issue_classic("app", t0);
        assert_eq!(a.expires_in, u64::MAX);
        s.issue_classic("app", t0);
        assert_eq!(s.status(&a.token, t0 + secs(1)).0, TokenStatus::Valid);
    }
}
