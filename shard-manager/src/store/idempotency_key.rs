//! The idempotency key a write is sent with: whose it is, what was asked (as a
//! fingerprint), and for how long its answer is kept; and the ids it gives the
//! records a request sends without one, keyed with the cluster's [`IdSecret`] so that
//! nobody who knows only a caller's key and request can tell the id in advance.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::document::RecordId;

/// The cluster's secret for the ids of records sent without one under an idempotency
/// key: 32 random bytes made once in the metadata database and read by every gateway at
/// start-up (`control_plane::id_secret`), so that every gateway derives the same id and
/// a retry through another gateway finds the record. Never printed: `Debug` shows no
/// byte of it, and it has no `Display` or `Serialize`.
#[derive(Clone)]
pub struct IdSecret(Hmac<Sha256>);

impl IdSecret {
    /// Bytes of a secret.
    pub const LEN: usize = 32;

    /// The secret `bytes` (as the metadata database holds them), or `None` when they
    /// are not [`IdSecret::LEN`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        // HMAC takes a key of any length; a wrong length was refused above.
        Hmac::<Sha256>::new_from_slice(bytes).ok().map(Self)
    }
}

impl fmt::Debug for IdSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdSecret(…)")
    }
}

/// A record sent without an id under an idempotency key, and no secret to derive its id
/// with: the gateway has not read the cluster's secret yet. An id derived otherwise would
/// differ from the one every other gateway derives, so the request is refused instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a record sent without an id under an Idempotency-Key gets an id derived with the cluster's secret, which this gateway has not read from the metadata database yet (it has not answered since the gateway started); send the record's id, or send the request again")]
pub struct NoIdSecret;

/// The key a write was sent with, whose it is, and what was asked.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Whose key: the API key's name ('' without keys). Keys of different callers never
    /// meet.
    pub caller: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of the request: the same key with another request is refused.
    pub fingerprint: [u8; 32],
    /// How long the answer is kept.
    pub ttl_secs: i64,
    /// A client's key, which another request may carry too: claimed at its home slot
    /// before anything is written. A gateway's own ([`IdempotencyKey::gateways`]) is
    /// random and one request's alone: no claim, no round trip.
    pub claimed: bool,
}

impl IdempotencyKey {
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
            claimed: true,
        }
    }

    /// A key of the gateway's own for one request a client sent without one: random, in
    /// a scope of its own beside `caller`'s (no client's key meets it), kept `ttl_secs`,
    /// and never claimed (no other request can carry it). What it buys: the request's
    /// fate is never unknown, as a keyed one's (its entry commits with its write).
    pub fn gateways(caller: &str, ttl_secs: i64) -> Self {
        let key = format!("{:032x}", rand::random::<u128>());
        Self {
            claimed: false,
            ..Self::new(&format!("{caller}\u{1}gateway"), &key, &[], ttl_secs)
        }
    }

    /// The shard key whose slot is this key's home, where its claim is kept
    /// (`statements::CLAIM`): a hash of caller and key only, never of the request, so every
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
    /// caller's key, or another request, never meets it. It is an HMAC keyed with the
    /// cluster's `secret`: without the secret, knowing a caller's key and request does
    /// not tell the id, so nobody can write a record under it first.
    pub fn record_id(&self, secret: &IdSecret, index: usize) -> RecordId {
        let mut mac = secret.0.clone();
        mac.update(b"shardgate record id\0");
        for part in [self.caller.as_bytes(), self.key.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&self.fingerprint);
        mac.update(&(index as u64).to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        RecordId::from_hash(bytes)
    }
}

/// The id of the record at `index` of a request that names none: under an idempotency
/// key, the id that key gives it with the cluster's `secret` ([`IdempotencyKey::record_id`],
/// the same on every retry through any gateway, so a retry finds the record it wrote);
/// without a key, a new random UUID. Under a key with no secret read yet, [`NoIdSecret`]:
/// an id made any other way would not be the one the other gateways derive.
pub fn minted_id(
    idempotency: Option<&IdempotencyKey>,
    secret: Option<&IdSecret>,
    index: usize,
) -> Result<RecordId, NoIdSecret> {
    match idempotency {
        None => Ok(RecordId::generate()),
        Some(idempotency) => Ok(idempotency.record_id(secret.ok_or(NoIdSecret)?, index)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateways_key_is_random_unclaimed_and_in_a_scope_no_caller_has() {
        let a = IdempotencyKey::gateways("alice", 300);
        let b = IdempotencyKey::gateways("alice", 300);
        assert_ne!(a.key, b.key);
        assert_eq!(a.key.len(), 32);
        assert!(!a.claimed && IdempotencyKey::new("alice", "k", &[], 1).claimed);
        assert_eq!(a.caller, "alice\u{1}gateway");
        assert_eq!(a.ttl_secs, 300);
    }

    #[test]
    fn a_home_depends_on_caller_and_key_only_and_is_a_number() {
        let a = IdempotencyKey::new("c", "k", &[b"write"], 60);
        let b = IdempotencyKey::new("c", "k", &[b"delete", b"other"], 5);
        assert_eq!(a.home_key(), b.home_key());
        assert_ne!(
            a.home_key(),
            IdempotencyKey::new("c", "k2", &[], 60).home_key()
        );
        assert_ne!(
            a.home_key(),
            IdempotencyKey::new("c2", "k", &[], 60).home_key()
        );
        // ("ck", "") and ("c", "k") do not meet.
        assert_ne!(
            IdempotencyKey::new("ck", "", &[], 60).home_key(),
            a.home_key()
        );
        assert!(a.home_key().parse::<i64>().is_ok(), "{}", a.home_key());
    }

    fn secret(byte: u8) -> IdSecret {
        IdSecret::from_slice(&[byte; IdSecret::LEN]).unwrap()
    }

    #[test]
    fn a_minted_id_is_the_same_for_every_retry_and_only_for_it() {
        let s = secret(7);
        let first = IdempotencyKey::new("c", "k", &[b"transaction", b"{}"], 60);
        let retry = IdempotencyKey::new("c", "k", &[b"transaction", b"{}"], 5);
        assert_eq!(first.record_id(&s, 0), retry.record_id(&s, 0));
        assert_eq!(first.record_id(&s, 7), retry.record_id(&s, 7));
        assert_ne!(first.record_id(&s, 0), first.record_id(&s, 1));
        // Another caller, key or request: another id.
        let others = [
            IdempotencyKey::new("c2", "k", &[b"transaction", b"{}"], 60),
            IdempotencyKey::new("c", "k2", &[b"transaction", b"{}"], 60),
            IdempotencyKey::new("c", "k", &[b"transaction", b"{\"n\":1}"], 60),
        ];
        for other in others {
            assert_ne!(other.record_id(&s, 0), first.record_id(&s, 0));
        }
        // UUID-shaped, as a generated id is, and valid as an id.
        let id = first.record_id(&s, 0);
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 8);
        assert!(RecordId::parse(id.as_str()).is_ok());
    }

    #[test]
    fn a_minted_id_depends_on_the_clusters_secret() {
        let request = IdempotencyKey::new("c", "k", &[b"write", b"users", b"{}"], 60);
        // The same secret (as every gateway reads it): the same id.
        assert_eq!(
            request.record_id(&secret(1), 0),
            request.record_id(&secret(1), 0)
        );
        // Another secret, even one bit off: another id.
        let mut flipped = [1u8; IdSecret::LEN];
        flipped[31] ^= 1;
        let flipped = IdSecret::from_slice(&flipped).unwrap();
        assert_ne!(
            request.record_id(&secret(1), 0),
            request.record_id(&flipped, 0)
        );
        assert_ne!(
            request.record_id(&secret(1), 0),
            request.record_id(&secret(2), 0)
        );
        // Not the hash of what the caller sends alone (the derivation before the secret).
        use sha2::Digest;
        let mut unkeyed = Sha256::new();
        unkeyed.update(b"shardgate record id\0");
        for part in [b"c".as_slice(), b"k"] {
            unkeyed.update((part.len() as u64).to_be_bytes());
            unkeyed.update(part);
        }
        unkeyed.update(request.fingerprint);
        unkeyed.update(0u64.to_be_bytes());
        let digest: [u8; 32] = unkeyed.finalize().into();
        let mut guessed = [0u8; 16];
        guessed.copy_from_slice(&digest[..16]);
        assert_ne!(
            request.record_id(&secret(1), 0),
            RecordId::from_hash(guessed)
        );
    }

    #[test]
    fn a_keyed_id_without_the_secret_is_refused_and_a_keyless_one_is_random() {
        let request = IdempotencyKey::new("c", "k", &[b"write"], 60);
        assert_eq!(minted_id(Some(&request), None, 0), Err(NoIdSecret));
        assert_eq!(
            minted_id(Some(&request), Some(&secret(3)), 0),
            Ok(request.record_id(&secret(3), 0))
        );
        let a = minted_id(None, None, 0).unwrap();
        let b = minted_id(None, Some(&secret(3)), 0).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_secret_is_32_bytes_and_never_printed() {
        assert!(IdSecret::from_slice(&[0; 31]).is_none());
        assert!(IdSecret::from_slice(&[0; 33]).is_none());
        let s = IdSecret::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{s:?} {:?}", Some(&s));
        assert_eq!(shown, "IdSecret(…) Some(IdSecret(…))");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    }
}
