//! The API keys that have authenticated on this instance, so that a Universal Logout call
//! presenting one of them may hold page views back from its first statement on (see
//! [`crate::priority::PageHold`]), not only once the database has confirmed the key. Only the
//! holder of a key that worked can be recognised: an entry is the SHA-256 of the whole secret,
//! compared in constant time. The database still decides: a recognised key that has since been
//! revoked is refused as before (and forgotten), having held pages for that one call.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::secret_token::{self, Kind, Presented};

/// At most this many keys are remembered; past it, new ones are not (they authenticate as
/// before, without the early hold).
const CAPACITY: usize = 1_024;

/// Key prefixes and hashes of the keys that authenticated here. Shared by the workers.
#[derive(Clone, Default)]
pub struct KnownKeys(Arc<Mutex<HashMap<String, [u8; 32]>>>);

impl KnownKeys {
    /// Whether `credential` is a key that authenticated here before.
    pub fn recognises(&self, credential: &str) -> bool {
        let Some(presented) = secret_token::parse(Kind::OrgApiKey, credential) else {
            return false;
        };
        let known = self.lock().get(&presented.prefix).copied();
        known.is_some_and(|hash| secret_token::matches(&hash, &presented))
    }

    /// Remembers a key the database accepted.
    pub fn remember(&self, presented: &Presented) {
        let mut known = self.lock();
        if known.len() < CAPACITY || known.contains_key(&presented.prefix) {
            known.insert(presented.prefix.clone(), presented.hash);
        }
    }

    /// Forgets `credential`, which the database refused (revoked, or its org disabled). Only
    /// the very key is forgotten: a forged key with its prefix (prefixes are shown in the
    /// dashboard and the audit log) must not evict the real one.
    pub fn forget(&self, credential: &str) {
        let Some(presented) = secret_token::parse(Kind::OrgApiKey, credential) else {
            return;
        };
        let mut known = self.lock();
        let same = known
            .get(&presented.prefix)
            .is_some_and(|hash| secret_token::matches(hash, &presented));
        if same {
            known.remove(&presented.prefix);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 32]>> {
        // The map holds no invariant a panicking holder could break.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        secret_token::reveal(&secret_token::issue(Kind::OrgApiKey)).to_owned()
    }

    fn presented(key: &str) -> Presented {
        secret_token::parse(Kind::OrgApiKey, key).unwrap()
    }

    #[test]
    fn a_key_is_recognised_only_after_it_authenticated_and_until_it_is_refused() {
        let known = KnownKeys::default();
        let key = key();
        assert!(!known.recognises(&key));
        known.remember(&presented(&key));
        assert!(known.recognises(&key));
        known.forget(&key);
        assert!(!known.recognises(&key));
    }

    #[test]
    fn a_forged_key_with_a_known_prefix_is_not_recognised() {
        let known = KnownKeys::default();
        let key = key();
        known.remember(&presented(&key));
        let last = if key.ends_with('A') { "B" } else { "A" };
        let forged = format!("{}{last}", &key[..key.len() - 1]);
        assert_eq!(presented(&forged).prefix, presented(&key).prefix);
        assert!(!known.recognises(&forged));
        assert!(!known.recognises("not a key"));
        // Its refusal does not evict the real key.
        known.forget(&forged);
        assert!(known.recognises(&key));
    }

    #[test]
    fn no_more_keys_are_remembered_than_the_capacity() {
        let known = KnownKeys::default();
        let keys: Vec<String> = (0..CAPACITY + 10).map(|_| key()).collect();
        for key in &keys {
            known.remember(&presented(key));
        }
        assert_eq!(known.lock().len(), CAPACITY);
        assert!(known.recognises(&keys[0]));
        assert!(!known.recognises(&keys[CAPACITY + 5]));
    }
}
