//! Bearer secrets the app issues: org API keys (`ual_…`, for Universal Logout), personal access
//! tokens (`pat_…`, for the JSON API), SCIM tokens (`scim_…`, for provisioning) and Shared
//! Signals push headers (`ssf_…`). A secret is 44 random alphanumerics (about 262 bits) after its kind. It is shown once; the database keeps its
//! SHA-256 and a display prefix, looks a presented secret up by prefix and compares hashes in
//! constant time.

use std::fmt;

use rand::{Rng as _, distr::Alphanumeric};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

const RANDOM_CHARS: usize = 44;
/// Random characters that go into the stored, displayed prefix.
const PREFIX_RANDOM_CHARS: usize = 8;

/// Which kind of secret; its tag starts every secret of the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OrgApiKey,
    AccessToken,
    ScimToken,
    /// The authorization header a Shared Signals transmitter pushes SETs with.
    SsfPush,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Self::OrgApiKey => "ual_",
            Self::AccessToken => "pat_",
            Self::ScimToken => "scim_",
            Self::SsfPush => "ssf_",
        }
    }
}

/// A freshly issued secret: show `secret` once, store `prefix` and `hash`.
pub struct Issued {
    pub secret: SecretString,
    pub prefix: String,
    pub hash: [u8; 32],
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("secret", &"[redacted]")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A secret as presented by a caller, split into what is looked up and what is compared.
pub struct Presented {
    pub prefix: String,
    pub hash: [u8; 32],
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Issues a new random secret of `kind`.
pub fn issue(kind: Kind) -> Issued {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_CHARS)
        .map(char::from)
        .collect();
    let secret = format!("{}{random}", kind.tag());
    Issued {
        prefix: prefix_of(kind, &secret),
        hash: hash(&secret),
        secret: SecretString::from(secret),
    }
}

/// Splits a presented secret, if it has the shape of a `kind` secret.
pub fn parse(kind: Kind, presented: &str) -> Option<Presented> {
    let random = presented.strip_prefix(kind.tag())?;
    if random.len() != RANDOM_CHARS || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(Presented {
        prefix: prefix_of(kind, presented),
        hash: hash(presented),
    })
}

/// Whether a presented secret's hash is the stored one, in constant time.
pub fn matches(stored: &[u8], presented: &Presented) -> bool {
    stored.ct_eq(&presented.hash).into()
}

/// Whether `text` starts like a `kind` secret (to route a bearer credential).
pub fn looks_like(kind: Kind, text: &str) -> bool {
    text.starts_with(kind.tag())
}

fn prefix_of(kind: Kind, secret: &str) -> String {
    secret[..kind.tag().len() + PREFIX_RANDOM_CHARS].to_owned()
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The full secret, for showing it the one time.
pub fn reveal(issued: &Issued) -> &str {
    issued.secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_secret_parses_and_matches() {
        let issued = issue(Kind::OrgApiKey);
        let text = reveal(&issued);
        assert!(text.starts_with("ual_"));
        assert_eq!(text.len(), 48);
        assert_eq!(issued.prefix, text[..12]);
        let presented = parse(Kind::OrgApiKey, text).unwrap();
        assert_eq!(presented.prefix, issued.prefix);
        assert!(matches(&issued.hash, &presented));
        assert!(!format!("{issued:?}").contains(text));
    }

    #[test]
    fn another_secret_with_the_same_prefix_does_not_match() {
        let issued = issue(Kind::AccessToken);
        let mut forged = reveal(&issued).to_owned();
        let last = if forged.ends_with('a') { "b" } else { "a" };
        forged.replace_range(forged.len() - 1.., last);
        let presented = parse(Kind::AccessToken, &forged).unwrap();
        assert_eq!(presented.prefix, issued.prefix);
        assert!(!matches(&issued.hash, &presented));
    }

    #[test]
    fn malformed_secrets_do_not_parse() {
        assert!(parse(Kind::OrgApiKey, "ual_short").is_none());
        assert!(parse(Kind::OrgApiKey, reveal(&issue(Kind::AccessToken))).is_none());
        assert!(parse(Kind::OrgApiKey, &format!("ual_{}", "é".repeat(22))).is_none());
        assert!(parse(Kind::OrgApiKey, &format!("ual_{}!", "a".repeat(43))).is_none());
    }
}
