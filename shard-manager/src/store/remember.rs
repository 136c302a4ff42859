//! The idempotency key a write is sent with: whose it is, what was asked (as a
//! fingerprint), and for how long its answer is kept.

/// The key a write was sent with, whose it is, and what was asked.
#[derive(Debug, Clone)]
pub struct Remember {
    /// Whose key: the API key's name ('' without keys). Keys of different callers never
    /// meet.
    pub caller: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of the request: the same key with another request is refused.
    pub fingerprint: [u8; 32],
    /// How long the answer is kept.
    pub ttl_secs: i64,
}

impl Remember {
    /// `parts` describe the request (operation, table, key, id, body...): each is
    /// hashed with its length, so no two different lists hash alike by concatenation.
    pub fn new(caller: &str, key: &str, parts: &[&[u8]], ttl_secs: i64) -> Self {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Self {
            caller: caller.to_owned(),
            key: key.to_owned(),
            fingerprint: hash.finalize().into(),
            ttl_secs,
        }
    }
}
