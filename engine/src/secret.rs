//! Secrets the server stores, sealed at rest: XChaCha20-Poly1305 under a key derived
//! (SHA-256) from the configured `secrets_key`, with a random nonce per value. A sealed
//! value reads `enc:v1:<hex of nonce and ciphertext>`; anything else is clear text from
//! before a key was configured.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// What sealed values start with.
pub const PREFIX: &str = "enc:v1:";

/// Seals and opens stored secrets.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

impl SecretBox {
    /// Under `key` (the `secrets_key` setting).
    pub fn new(key: &str) -> Self {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        Self { cipher: XChaCha20Poly1305::new(&digest.into()) }
    }

    /// Seals a value.
    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        // Encryption of a short byte string with a fresh nonce cannot fail.
        let sealed = self.cipher.encrypt(XNonce::from_slice(&nonce), plain.as_bytes()).unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}", hex::encode(bytes))
    }

    /// Opens a sealed value (clear values pass through).
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(body) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
        let bytes = hex::decode(body).map_err(|_| "sealed secret is not hex".to_string())?;
        if bytes.len() < 24 {
            return Err("sealed secret is too short".into());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| "sealed secret does not open with this secrets_key".to_string())?;
        String::from_utf8(plain).map_err(|_| "sealed secret is not text".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_same_key() {
        let b = SecretBox::new("key-0123456789abcdef");
        let sealed = b.seal("hook-secret-xyz");
        assert!(is_sealed(&sealed) && !sealed.contains("hook-secret-xyz"));
        assert_ne!(sealed, b.seal("hook-secret-xyz"), "a fresh nonce each time");
        assert_eq!(b.open(&sealed).unwrap(), "hook-secret-xyz");
        assert!(SecretBox::new("another-key-0123456").open(&sealed).is_err());
        assert_eq!(b.open("clear").unwrap(), "clear");
    }
}
