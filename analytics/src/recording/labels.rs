//! Bounded label sets: endpoint names, methods, shards, roles and outcomes become small
//! indices on the hot path and names again only when a report is built.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::recording::sample::{ErrorClass, ServedBy};

/// Label value for everything folded together once a cap is reached.
pub(crate) const OTHER: &str = "other";
/// Label value for "not applicable" (no shard, no serving role).
pub(crate) const NONE: &str = "none";
/// Endpoint names longer than this are folded into [`OTHER`]: route patterns are short.
const MAX_ENDPOINT_LEN: usize = 128;

/// Endpoint name → index, lock-free for names already seen.
///
/// Slots are filled once and never change, so a lookup is a scan of acquire loads
/// with no writes; two threads recording never bounce a cache line here. The index
/// `capacity()` stands for [`OTHER`].
pub(crate) struct Interner {
    names: Box<[OnceLock<Box<str>>]>,
    len: AtomicUsize,
    grow: Mutex<()>,
}

impl Interner {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            names: (0..capacity).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            grow: Mutex::new(()),
        }
    }

    /// Index of the overflow label; also the number of named slots.
    pub(crate) fn capacity(&self) -> usize {
        self.names.len()
    }

    /// Index for `name`, claiming a new slot if there is room.
    pub(crate) fn index(&self, name: &str) -> usize {
        if name == OTHER || name.len() > MAX_ENDPOINT_LEN {
            return self.capacity();
        }
        if let Some(found) = self.find(name, self.len.load(Ordering::Acquire)) {
            return found;
        }
        let _guard = self.grow.lock();
        let len = self.len.load(Ordering::Acquire);
        if let Some(found) = self.find(name, len) {
            return found;
        }
        match self.names.get(len) {
            Some(slot) if slot.set(name.into()).is_ok() => {
                self.len.store(len + 1, Ordering::Release);
                len
            }
            _ => self.capacity(),
        }
    }

    fn find(&self, name: &str, len: usize) -> Option<usize> {
        self.names[..len.min(self.names.len())]
            .iter()
            .position(|slot| slot.get().is_some_and(|known| **known == *name))
    }

    /// Name for an index produced by [`Interner::index`].
    pub(crate) fn name(&self, index: usize) -> &str {
        self.names
            .get(index)
            .and_then(OnceLock::get)
            .map_or(OTHER, |name| name)
    }
}

/// Methods with their own label; anything else is [`OTHER`].
pub(crate) const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Index into [`METHODS`], or `METHODS.len()` for any other method.
pub(crate) fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or(METHODS.len())
}

/// Label for a method index.
pub(crate) fn method_name(index: usize) -> &'static str {
    METHODS.get(index).copied().unwrap_or(OTHER)
}

/// Slot for a shard id: its own below `cap`, the shared overflow slot `cap` above.
pub(crate) fn shard_slot(shard: u32, cap: u32) -> usize {
    shard.min(cap) as usize
}

/// Label for a shard slot.
pub(crate) fn shard_name(slot: usize, cap: u32) -> String {
    if slot < cap as usize {
        slot.to_string()
    } else {
        OTHER.to_owned()
    }
}

/// Roles in counter order; the last slot is "no role" (the request failed first).
pub(crate) const ROLES: [&str; 4] = ["primary", "replica", "cache", NONE];

/// Index into [`ROLES`].
pub(crate) fn role_index(served_by: Option<ServedBy>) -> usize {
    match served_by {
        Some(ServedBy::Primary) => 0,
        Some(ServedBy::Replica) => 1,
        Some(ServedBy::Cache) => 2,
        None => 3,
    }
}

/// Outcomes in counter order: success, then each [`ErrorClass`].
pub(crate) const OUTCOMES: [&str; 5] = [
    "success",
    "client",
    "shard_unavailable",
    "timeout",
    "internal",
];

/// Index into [`OUTCOMES`]; 0 is success.
pub(crate) fn outcome_index(class: Option<ErrorClass>) -> usize {
    class.map_or(0, |c| c.index() + 1)
}

/// A multiply-rotate hasher for small integer keys (series keys, thread ids).
///
/// The std SipHash resists hash flooding, which cannot happen with keys we build
/// ourselves from bounded indices, and costs several times more per record.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHash(u64);

impl Hasher for FastHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(K);
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHash;

    fn build_hasher(&self) -> FastHash {
        FastHash(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_caps_distinct_names_and_folds_the_rest_into_other() {
        let interner = Interner::new(2);
        assert_eq!(interner.index("/api/read"), 0);
        assert_eq!(interner.index("/api/write"), 1);
        assert_eq!(interner.index("/api/read"), 0);
        assert_eq!(interner.index("/api/delete"), 2);
        assert_eq!(interner.name(2), OTHER);
        assert_eq!(interner.name(1), "/api/write");
    }

    #[test]
    fn the_callers_other_is_the_overflow_label() {
        let interner = Interner::new(4);
        assert_eq!(interner.index(OTHER), 4);
        assert_eq!(interner.index(&"x".repeat(200)), 4);
        assert_eq!(interner.index("/api/read"), 0);
    }

    #[test]
    fn shards_above_the_cap_share_one_slot() {
        assert_eq!(shard_slot(3, 16), 3);
        assert_eq!(shard_slot(99, 16), 16);
        assert_eq!(shard_name(3, 16), "3");
        assert_eq!(shard_name(16, 16), OTHER);
    }

    #[test]
    fn methods_and_outcomes_map_to_fixed_labels() {
        assert_eq!(method_name(method_index("post")), "POST");
        assert_eq!(method_name(method_index("BREW")), OTHER);
        assert_eq!(
            OUTCOMES[outcome_index(Some(ErrorClass::Timeout))],
            "timeout"
        );
        assert_eq!(OUTCOMES[outcome_index(None)], "success");
        assert_eq!(ROLES[role_index(Some(ServedBy::Cache))], "cache");
    }
}
