//! An app's shared record, and the validation of every record read back from a store: a store
//! is untrusted input (another version, another program, an attacker with write access, a
//! corrupted disk), so nothing read from it is used before `validate` accepts it.
//!
//! Times never cross a clock boundary: a store keeps fetch and expiry times on its own clock
//! (Redis: the server's `TIME`; files: the host's boot clock), and the engine only ever sees
//! durations computed on that clock: the token's lifetime and the time it has left.

use std::time::Duration;

/// Generations stay exact in Lua's doubles (Redis scripts compare them) and `+ 1` never wraps.
pub const MAX_GENERATION: u64 = (1 << 53) - 1;
/// WeChat's tokens last 7200 s; a record claiming more than a day is not a WeChat token.
pub const MAX_LIFETIME_MS: u64 = 86_400_000;
/// A record fetched further than this in the store clock's future is refused: a writer with a
/// broken clock must not make its token look fresh to everyone else.
pub const FUTURE_SLACK_MS: u64 = 2_000;
/// WeChat documents 512 bytes as the storage to reserve for a token.
pub const MAX_TOKEN_LEN: usize = crate::upstream::MAX_TOKEN_LEN;

/// One app's shared token, as read from (or published to) a store. Never holds the AppSecret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub access_token: String,
    /// Increases by one with every token published for the app; invalidation names it, so
    /// that a report about generation N can never withdraw generation N+1.
    pub generation: u64,
    /// The lifetime WeChat gave the fetcher (`expires_in`).
    pub lifetime_ms: u64,
    /// What is left of it, on the store's clock, when read (or when published).
    pub remaining_ms: u64,
    /// Set when a process reported this token rejected and could not replace it yet.
    pub invalidated: bool,
    /// A refresh ahead of expiry got this same value back (WeChat re-serves a ticket while it
    /// is valid): it is kept to its expiry, not refreshed ahead again by anyone in the fleet.
    pub renewed: bool,
}

impl Record {
    pub fn lifetime(&self) -> Duration {
        Duration::from_millis(self.lifetime_ms)
    }

    pub fn age_ms(&self) -> u64 {
        self.lifetime_ms.saturating_sub(self.remaining_ms)
    }

    /// Usable for at least `margin_ms` more.
    pub fn is_usable(&self, margin_ms: u64) -> bool {
        !self.invalidated && self.remaining_ms > margin_ms
    }

    /// Whether a refresh `ahead` of expiry (capped at half the lifetime) is due; never for a
    /// `renewed` record, which is replaced when it expires.
    pub fn refresh_due(&self, ahead: Duration) -> bool {
        if self.renewed {
            return false;
        }
        let ahead = ahead.min(self.lifetime() / 2).as_millis() as u64;
        self.remaining_ms <= ahead
    }
}

/// What a store held for an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Absent,
    Valid(Record),
    /// Present but refused by `validate` (or unreadable as a record): treated as absent, and
    /// replaced under the lease. `generation` is the stored one when it was sane, else 0, so
    /// the replacement still counts up where it can.
    Bad {
        generation: u64,
        why: String,
    },
}

impl Loaded {
    pub fn valid(&self) -> Option<&Record> {
        match self {
            Loaded::Valid(r) => Some(r),
            _ => None,
        }
    }

    /// The generation a replacement of this record gets.
    pub fn next_generation(&self) -> u64 {
        match self {
            Loaded::Absent => 1,
            Loaded::Valid(r) => r.generation + 1,
            Loaded::Bad { generation, .. } => generation + 1,
        }
    }
}

/// A record's fields as a store holds them, each `None` when missing or not a number; times in
/// milliseconds on the store's own clock.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    pub access_token: Option<String>,
    pub generation: Option<u64>,
    pub fetched_at_ms: Option<u64>,
    pub expires_at_ms: Option<u64>,
    pub invalidated: bool,
    pub renewed: bool,
}

/// WeChat's tokens are `[A-Za-z0-9_-]` in practice, but the alphabet is not documented; we
/// accept printable ASCII without space (0x21..=0x7E): anything else (CR, LF, NUL, space,
/// non-ASCII) could split a header or a log line, and is not a token.
pub fn valid_token(t: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&t.len()) && t.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Accepts a record read at `now_ms` (the store's clock) or says why not.
pub fn validate(raw: Raw, now_ms: u64) -> Loaded {
    let generation = raw.generation.filter(|g| (1..=MAX_GENERATION).contains(g));
    let bad = |why: &str| Loaded::Bad {
        generation: generation.unwrap_or(0),
        why: why.to_owned(),
    };
    let Some(generation) = generation else {
        return bad("generation missing or outside 1..=2^53-1");
    };
    let Some(token) = raw.access_token.filter(|t| valid_token(t)) else {
        return bad("access_token missing, empty, longer than 512 bytes or not printable ASCII");
    };
    let (Some(fetched), Some(expires)) = (raw.fetched_at_ms, raw.expires_at_ms) else {
        return bad("fetched_at_ms or expires_at_ms missing");
    };
    if fetched > now_ms.saturating_add(FUTURE_SLACK_MS) {
        return bad("fetched in the future of the store's clock");
    }
    let lifetime = expires.saturating_sub(fetched);
    if expires <= fetched || lifetime > MAX_LIFETIME_MS {
        return bad("lifetime not within 1 ms..=24 h");
    }
    Loaded::Valid(Record {
        access_token: token,
        generation,
        lifetime_ms: lifetime,
        // Never more than the lifetime, even for a record from a little in the future.
        remaining_ms: expires.saturating_sub(now_ms).min(lifetime),
        invalidated: raw.invalidated,
        renewed: raw.renewed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(token: &str, generation: u64, fetched: u64, expires: u64) -> Raw {
        Raw {
            access_token: Some(token.to_owned()),
            generation: Some(generation),
            fetched_at_ms: Some(fetched),
            expires_at_ms: Some(expires),
            invalidated: false,
            renewed: false,
        }
    }

    #[test]
    fn refresh_due_caps_ahead_at_half_life() {
        let r = |remaining_ms| Record {
            access_token: "t".into(),
            generation: 1,
            lifetime_ms: 10_000,
            remaining_ms,
            invalidated: false,
            renewed: false,
        };
        assert!(!r(6_000).refresh_due(Duration::from_secs(300)));
        assert!(r(5_000).refresh_due(Duration::from_secs(300)));
        assert!(r(1_000).refresh_due(Duration::from_secs(1)));
        assert!(!r(2_000).refresh_due(Duration::from_secs(1)));
        assert!(r(1).is_usable(0) && !r(0).is_usable(0) && !r(1000).is_usable(1000));
    }

    #[test]
    fn a_sane_record_is_accepted_with_its_remaining_time() {
        let l = validate(raw("tok_A-1", 3, 1_000, 8_201_000), 2_001_000);
        assert_eq!(
            l,
            Loaded::Valid(Record {
                access_token: "tok_A-1".into(),
                generation: 3,
                lifetime_ms: 8_200_000,
                remaining_ms: 6_200_000,
                invalidated: false,
                renewed: false
            })
        );
        assert_eq!(l.next_generation(), 4);
    }

    #[test]
    fn every_kind_of_garbage_is_refused() {
        let now = 10_000_000;
        let cases = [
            (raw(&"a".repeat(10_000), 1, now, now + 7_200_000), 1),
            (raw("", 1, now, now + 7_200_000), 1),
            (raw("ab\r\nc", 1, now, now + 7_200_000), 1),
            (raw("a b", 1, now, now + 7_200_000), 1),
            (raw("密", 1, now, now + 7_200_000), 1),
            (raw("t", 1, now, u64::MAX), 1),
            (raw("t", 1, now, now), 1),
            (raw("t", u64::MAX, now, now + 7_200_000), 0),
            (raw("t", 0, now, now + 7_200_000), 0),
            // An hour in the future: a writer whose clock is ahead.
            (raw("t", 5, now + 3_600_000, now + 3_600_000 + 7_200_000), 5),
            (Raw::default(), 0),
        ];
        for (r, generation) in cases {
            match validate(r.clone(), now) {
                Loaded::Bad { generation: g, .. } => assert_eq!(g, generation, "{r:?}"),
                other => panic!("accepted {r:?}: {other:?}"),
            }
        }
        assert!(valid_token(&"a".repeat(512)) && !valid_token(&"a".repeat(513)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever a store holds, an accepted record keeps every promise the engine relies on.
        #[test]
        fn whatever_is_stored_an_accepted_record_is_sane(
            token in proptest::option::of(".{0,600}"),
            generation in proptest::option::of(proptest::num::u64::ANY),
            fetched in proptest::option::of(proptest::num::u64::ANY),
            expires in proptest::option::of(proptest::num::u64::ANY),
            now in proptest::num::u64::ANY,
            invalidated in proptest::bool::ANY,
        ) {
            let raw = Raw { access_token: token, generation, fetched_at_ms: fetched,
                            expires_at_ms: expires, invalidated, renewed: false };
            match validate(raw, now) {
                Loaded::Valid(r) => {
                    proptest::prop_assert!(valid_token(&r.access_token));
                    proptest::prop_assert!((1..=MAX_GENERATION).contains(&r.generation));
                    proptest::prop_assert!(r.lifetime_ms >= 1 && r.lifetime_ms <= MAX_LIFETIME_MS);
                    proptest::prop_assert!(r.remaining_ms <= r.lifetime_ms);
                    proptest::prop_assert!(Loaded::Valid(r).next_generation() <= MAX_GENERATION + 1);
                }
                Loaded::Bad { generation, .. } => {
                    proptest::prop_assert!(generation <= MAX_GENERATION);
                }
                Loaded::Absent => proptest::prop_assert!(false, "validate never says absent"),
            }
        }
    }
}
