//! A fetched token and the instants that govern its life, on the monotonic clock.

use std::time::{Duration, Instant};

use zeroize::Zeroize;

pub struct Token {
    value: Box<str>,
    /// Counted from when the request was *sent*, so network latency only ever shortens
    /// the lifetime we assume, never lengthens it.
    expires_at: Instant,
    lifetime: Duration,
    /// Bumped every time the token handed out changes; lets bindings cache on their side.
    pub generation: u64,
}

impl Token {
    pub fn new(value: String, requested_at: Instant, lifetime: Duration, generation: u64) -> Token {
        Token {
            value: value.into_boxed_str(),
            expires_at: requested_at + lifetime,
            lifetime,
            generation,
        }
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    pub fn is_usable(&self, now: Instant) -> bool {
        now < self.expires_at
    }

    pub fn requested_at(&self) -> Instant {
        self.expires_at - self.lifetime
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at.saturating_duration_since(now)
    }

    /// When to start a background refresh: `ahead` before expiry, but never earlier than half
    /// the lifetime, so that a short-lived token cannot cause a refresh loop.
    pub fn refresh_at(&self, ahead: Duration) -> Instant {
        self.expires_at - self.refresh_window(ahead)
    }

    /// How long before expiry the refresh-ahead window opens: `ahead`, capped at half the
    /// lifetime.
    pub fn refresh_window(&self, ahead: Duration) -> Duration {
        ahead.min(self.lifetime / 2)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // A token is a bearer credential for two hours: do not leave it in freed memory.
        self.value.zeroize();
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the whole token: a prefix is enough to correlate in logs.
        let prefix: String = self.value.chars().take(6).collect();
        write!(
            f,
            "Token({prefix}…, {} bytes, generation {})",
            self.value.len(),
            self.generation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_ahead_is_capped_at_half_the_lifetime() {
        let t0 = Instant::now();
        let t = Token::new("x".into(), t0, Duration::from_secs(7200), 1);
        assert_eq!(
            t.refresh_at(Duration::from_secs(300)),
            t0 + Duration::from_secs(6900)
        );
        let short = Token::new("x".into(), t0, Duration::from_secs(200), 1);
        assert_eq!(
            short.refresh_at(Duration::from_secs(300)),
            t0 + Duration::from_secs(100)
        );
        assert!(short.is_usable(t0 + Duration::from_secs(199)));
        assert!(!short.is_usable(t0 + Duration::from_secs(200)));
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let t = Token::new(
            "ABCDEFGHIJKLMNOP".into(),
            Instant::now(),
            Duration::from_secs(1),
            3,
        );
        let d = format!("{t:?}");
        assert!(d.contains("ABCDEF") && !d.contains("GHIJ"), "{d}");
    }
}
