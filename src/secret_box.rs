//! Encryption for the secrets the app must read back, such as an org's OIDC client secret
//! (hashing would not do: the secret is sent to the IdP). ChaCha20-Poly1305 with a random nonce;
//! each ciphertext is bound to its org, so it cannot be copied into another org's row.
//!
//! The key comes from `SECRETS_KEY`. Without it, a key generated on first start is kept in the
//! `settings` table, which keeps the zero-configuration start but means a database dump alone
//! reveals the secrets: the app says so at start-up.

use anyhow::Context as _;
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit as _, Nonce,
    aead::{Aead as _, Payload},
};
use diesel_async::AsyncPgConnection;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::{config::Settings, db::models::InstanceSecret};

const VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;

/// Seals and opens secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// A box for a 32-byte key given as 64 hex digits.
    pub fn from_hex(key: &str) -> anyhow::Result<SecretBox> {
        let bytes = hex::decode(key.trim()).context("the secrets key is not hex")?;
        let cipher = ChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("the secrets key must be 32 bytes (64 hex digits)"))?;
        Ok(SecretBox { cipher })
    }

    /// A new random key, hex-encoded.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        hex::encode(key)
    }

    /// The box of this instance: `SECRETS_KEY`, else the key kept in the database. The flag says
    /// whether the key came from the environment.
    pub async fn load(
        conn: &mut AsyncPgConnection,
        settings: &Settings,
    ) -> anyhow::Result<(SecretBox, bool)> {
        match &settings.secrets_key {
            Some(key) => Ok((SecretBox::from_hex(key.0.expose_secret())?, true)),
            None => {
                let key =
                    InstanceSecret::get_or_create(conn, "secrets_key", SecretBox::generate_key)
                        .await
                        .context("cannot read the secrets key")?;
                Ok((SecretBox::from_hex(&key)?, false))
            }
        }
    }

    /// Encrypts `plaintext` for the record `context` (an org id).
    pub fn seal(&self, plaintext: &str, context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context,
                },
            )
            .expect("encryption of a short secret cannot fail");
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> anyhow::Result<SecretString> {
        anyhow::ensure!(
            sealed.len() > 1 + NONCE_BYTES && sealed[0] == VERSION,
            "not a sealed secret"
        );
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_BYTES);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "the secret cannot be decrypted with this key (was SECRETS_KEY changed?)"
                )
            })?;
        let text = String::from_utf8(plaintext).context("the secret is not text")?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let key = SecretBox::generate_key();
        let sealed_box = SecretBox::from_hex(&key).unwrap();
        let sealed = sealed_box.seal("client-secret", b"org-1");

        assert!(!sealed.windows(13).any(|w| w == b"client-secret"));
        assert_eq!(
            sealed_box.open(&sealed, b"org-1").unwrap().expose_secret(),
            "client-secret"
        );
        assert!(
            sealed_box.open(&sealed, b"org-2").is_err(),
            "bound to its org"
        );
        let other = SecretBox::from_hex(&SecretBox::generate_key()).unwrap();
        assert!(other.open(&sealed, b"org-1").is_err());
        assert_ne!(
            sealed,
            sealed_box.seal("client-secret", b"org-1"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(SecretBox::from_hex("abcd").is_err());
        assert!(SecretBox::from_hex("zz").is_err());
        assert_eq!(
            format!(
                "{:?}",
                SecretBox::from_hex(&SecretBox::generate_key()).unwrap()
            ),
            "SecretBox([redacted])"
        );
    }
}
