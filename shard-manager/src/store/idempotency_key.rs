//! The idempotency key a write is sent with: whose it is, what was asked (as a
//! fingerprint), and for how long its answer is kept; and the ids it gives the
//! records a request sends without one.

use super::document::RecordId;

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

    /// The shard key whose slot is this key's home, where its claim is kept
    /// (`claim_sql`): a hash of caller and key only, never of the request, so every
    /// request with the key meets at one place. Decimal digits, so that numeric routing
    /// places it too.
    pub fn home_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [self.caller.as_bytes(), self.key.as_bytes()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let digest: [u8; 32] = hash.finalize().into();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) >> 1).to_string()
    }

    /// The id of the record at `index` of this request when the request names none.
    /// It depends on the caller, the key and the request (its fingerprint), so every
    /// retry of the request gives the record the id the first try gave it, and finds
    /// the record and its idempotency entry instead of writing a second one. Another
    /// caller's key, or another request, never meets it.
    pub fn record_id(&self, index: usize) -> RecordId {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"shardgate record id\0");
        for part in [self.caller.as_bytes(), self.key.as_bytes()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.update(self.fingerprint);
        hash.update((index as u64).to_be_bytes());
        let digest: [u8; 32] = hash.finalize().into();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        RecordId::from_hash(bytes)
    }
}

/// The id of the record at `index` of a request that names none: under an idempotency
/// key, the id that key gives it ([`Remember::record_id`], the same on every retry, so a
/// retry finds the record it wrote); without a key, a new random UUID.
pub fn minted_id(idempotency: Option<&Remember>, index: usize) -> RecordId {
    idempotency.map_or_else(RecordId::generate, |r| r.record_id(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_depends_on_caller_and_key_only_and_is_a_number() {
        let a = Remember::new("c", "k", &[b"write"], 60);
        let b = Remember::new("c", "k", &[b"delete", b"other"], 5);
        assert_eq!(a.home_key(), b.home_key());
        assert_ne!(a.home_key(), Remember::new("c", "k2", &[], 60).home_key());
        assert_ne!(a.home_key(), Remember::new("c2", "k", &[], 60).home_key());
        // ("ck", "") and ("c", "k") do not meet.
        assert_ne!(Remember::new("ck", "", &[], 60).home_key(), a.home_key());
        assert!(a.home_key().parse::<i64>().is_ok(), "{}", a.home_key());
    }

    #[test]
    fn a_minted_id_is_the_same_for_every_retry_and_only_for_it() {
        let first = Remember::new("c", "k", &[b"transaction", b"{}"], 60);
        let retry = Remember::new("c", "k", &[b"transaction", b"{}"], 5);
        assert_eq!(first.record_id(0), retry.record_id(0));
        assert_eq!(first.record_id(7), retry.record_id(7));
        assert_ne!(first.record_id(0), first.record_id(1));
        // Another caller, key or request: another id.
        let others = [
            Remember::new("c2", "k", &[b"transaction", b"{}"], 60),
            Remember::new("c", "k2", &[b"transaction", b"{}"], 60),
            Remember::new("c", "k", &[b"transaction", b"{\"n\":1}"], 60),
        ];
        for other in others {
            assert_ne!(other.record_id(0), first.record_id(0));
        }
        // UUID-shaped, as a generated id is, and valid as an id.
        let id = first.record_id(0);
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 8);
        assert!(RecordId::parse(id.as_str()).is_ok());
    }
}
