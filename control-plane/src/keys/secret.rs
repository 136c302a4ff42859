//! API key secrets: made from 32 random bytes, shown once, stored only as their SHA-256;
//! or made by an operator in the same shape and adopted ([`Secret::given`]).
//!
//! A key is `sg_` and 64 lowercase hex digits (256 bits from the operating system's
//! generator, through `rand`'s thread generator). The gateway hashes what a client
//! presents and looks the hash up: a key's text is never stored nor logged, and with
//! 256 random bits a fast hash is enough (nothing to guess, no salt needed).

use std::fmt;

use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked one is easy to recognise (and to search for,
/// as `shard_manager::redact` does in every text shown to people).
pub const PREFIX: &str = shard_manager::redact::API_KEY_PREFIX;
/// Hex digits after the prefix.
const HEX_DIGITS: usize = 64;
/// Length of a well-formed key.
pub const KEY_LEN: usize = PREFIX.len() + HEX_DIGITS;

/// A key's text: printed once by `shard-admin keys create|rotate`, or read from the
/// environment by `keys adopt`; hashed, then dropped.
pub struct Secret(String);

impl Secret {
    /// A fresh random key.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(format!("{PREFIX}{}", hex(&bytes)))
    }

    /// A key an operator made and keeps elsewhere (a Kubernetes Secret, say), to store
    /// as its hash (`shard-admin keys adopt`); refused unless it has a key's shape.
    pub fn given(text: &str) -> Result<Self, String> {
        match KeyHash::well_formed(text) {
            true => Ok(Self(text.to_owned())),
            false => Err(format!(
                "a key is {PREFIX} and {HEX_DIGITS} lowercase hex digits ({KEY_LEN} characters); this is {} characters and not one",
                text.chars().count()
            )),
        }
    }

    /// The text to hand to the key's holder.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// SHA-256 of a key's text: what the metadata database and the gateways hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Whether `token` has a key's shape (`sg_` + 64 lowercase hex digits): anything
    /// else is refused before it is hashed.
    pub fn well_formed(token: &str) -> bool {
        token.len() == KEY_LEN
            && token.starts_with(PREFIX)
            && token[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The first 8 hex digits of the hash: names a key in listings without revealing it.
    pub fn fingerprint(&self) -> String {
        hex(&self.0[..4])
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", self.fingerprint())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_key_is_taken_only_in_a_keys_shape() {
        let made = Secret::generate();
        let given = Secret::given(made.expose()).expect("a generated key is well formed");
        assert_eq!(given.hash(), made.hash());
        for bad in ["", "sg_", "sg_ABC", &format!("xx_{}", "0".repeat(64))] {
            let refused = Secret::given(bad).unwrap_err();
            assert!(refused.contains("lowercase hex"), "{refused}");
            // The refusal never repeats what was given.
            assert!(bad.len() < 4 || !refused.contains(bad), "{refused}");
        }
    }

    #[test]
    fn generated_keys_are_well_formed_distinct_and_hash_to_their_hash() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert!(KeyHash::well_formed(a.expose()), "{}", a.expose());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), KeyHash::of(a.expose()));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "Secret(…)", "never printed by Debug");
    }

    #[test]
    fn the_hash_is_sha256_of_the_text() {
        // printf %s abc | sha256sum
        let h = KeyHash::of("abc");
        assert_eq!(
            hex(&h.0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.fingerprint(), "ba7816bf");
    }

    #[test]
    fn only_the_key_shape_is_well_formed() {
        let good = format!("sg_{}", "0a".repeat(32));
        assert!(KeyHash::well_formed(&good));
        for bad in [
            String::new(),
            "sg_".into(),
            good.to_uppercase(),
            format!("{good}0"),
            good.replacen("sg_", "sk_", 1),
            format!("sg_{}", "g".repeat(64)),
            format!("sg_{}é", "0".repeat(62)),
        ] {
            assert!(!KeyHash::well_formed(&bad), "{bad:?}");
        }
    }
}
