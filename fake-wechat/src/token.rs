//! Token strings: random enough to never repeat in a test run, no `rand` crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Real tokens use the URL-safe alphabet; 64 symbols makes one symbol per 6 bits.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// Shared across fakes so two servers started in the same nanosecond still diverge.
static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct TokenRng {
    state: u64,
}

impl TokenRng {
    pub fn new() -> TokenRng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = SEED_COUNTER.fetch_add(1, Ordering::Relaxed);
        let seed = splitmix(nanos ^ splitmix(n) ^ (std::process::id() as u64).rotate_left(32));
        // xorshift must never hold zero.
        TokenRng { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn token(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let mut bits = self.next();
            for _ in 0..10 {
                if out.len() == len {
                    break;
                }
                out.push(ALPHABET[(bits & 63) as usize] as char);
                bits >>= 6;
            }
        }
        out
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_have_requested_length_and_alphabet() {
        let mut rng = TokenRng::new();
        for len in [1, 7, 136, 512, 1024] {
            let t = rng.token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn generators_diverge() {
        let mut seen = HashSet::new();
        for _ in 0..100 {
            assert!(seen.insert(TokenRng::new().token(16)));
        }
    }
}
