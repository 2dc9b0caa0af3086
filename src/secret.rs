//! The AppSecret: kept out of every Debug/Display output and zeroized on drop.

use std::fmt;

use zeroize::Zeroizing;

#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: &str) -> Secret {
        Secret(Zeroizing::new(value.to_owned()))
    }

    /// The only way to the plain text; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Eq for Secret {}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        // Not secret-dependent timing in any way that matters: both sides are ours.
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_value() {
        let s = Secret::new("s3cr3t-value");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "s3cr3t-value");
    }
}
