//! The memory tier: cache entries held in the gateway's own memory, keyed by their full
//! Redis key, so a hot record answers without a trip to Redis. Redis keeps it exact by
//! telling the tracking connection whenever a key it read changes (`tracking`).
//!
//! Holding the same key and the same entry as Redis keeps every check of the lookup
//! unchanged: a new epoch is a new key, a retired epoch's marker is held (and tracked)
//! like any entry, and an entry behind a read's token is a miss here as there.
//!
//! The race it guards: a lookup reads a key from Redis, and before its answer is held
//! here, the key changes and Redis's invalidation is processed (it may even be processed
//! before the lookup's task runs again). Holding the answer then would keep a stale
//! entry that no later invalidation removes. So the tier is split into stripes, each
//! with a generation that every invalidation, eviction and flush of the stripe raises
//! under its lock; a lookup takes a [`Ticket`] (the generation) before its Redis call and
//! holds the answer only if the generation is unchanged, checked under the same lock.
//!
//! Memory is bounded: at most about `entries` entries (rounded up to whole stripes),
//! each no larger than [`MAX_HELD_BYTES`]; past the bound the least recently used goes
//! (CLOCK: a second chance for an entry read since it was last passed).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::entry::Entry;

/// The most stripes (locks, generations); fewer when the tier holds fewer entries.
const STRIPES: usize = 64;

/// A record whose JSON is larger than this is not held in memory (it stays in Redis):
/// with the entry bound, this bounds the tier's memory.
pub(super) const MAX_HELD_BYTES: usize = 8 * 1024;

/// What the tier holds under a key: a record's entry, or a shard's retired-epoch marker
/// as Redis had it (None: no marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Held {
    Entry(Entry),
    Marker(Option<String>),
}

/// A stripe's generation, taken before a Redis call whose answer may be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    stripe: usize,
    generation: u64,
}

struct Slot {
    held: Held,
    /// Read since the clock hand last passed it.
    referenced: bool,
    /// Which queue position is this slot's (older positions of the key are stale).
    seq: u64,
}

#[derive(Default)]
struct Stripe {
    slots: HashMap<String, Slot>,
    /// The clock: keys in the order they were held, with the slot's `seq`.
    clock: VecDeque<(u64, String)>,
    next_seq: u64,
    generation: u64,
}

impl Stripe {
    /// Makes room for one more slot: the first slot the hand finds unreferenced goes.
    fn make_room(&mut self, cap: usize) {
        while self.slots.len() >= cap {
            let Some((seq, key)) = self.clock.pop_front() else {
                return;
            };
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            if slot.seq != seq {
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                self.clock.push_back((seq, key));
            } else {
                self.slots.remove(&key);
            }
        }
    }

    /// Drops queue positions whose slot went (an invalidation leaves them behind), once
    /// they outnumber the slots, so the queue stays bounded too.
    fn compact(&mut self, cap: usize) {
        if self.clock.len() > 2 * cap + 16 {
            let slots = &self.slots;
            self.clock
                .retain(|(seq, key)| slots.get(key).is_some_and(|s| s.seq == *seq));
        }
    }
}

/// The counts the tier exposes (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Keys Redis said changed (each evicts what the tier held under it).
    pub invalidations: u64,
    /// Times the tier emptied: its tracking connection dropped or stopped answering,
    /// or Redis was flushed.
    pub flushes: u64,
    /// Entries held now.
    pub entries: u64,
}

/// The bounded map, in stripes.
pub(super) struct Tier {
    stripes: Box<[Mutex<Stripe>]>,
    cap: usize,
    hits: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

impl Tier {
    /// A tier of about `entries` entries (at least one).
    pub(super) fn new(entries: usize) -> Self {
        let entries = entries.max(1);
        let n = entries.clamp(1, STRIPES);
        Self {
            stripes: (0..n).map(|_| Mutex::new(Stripe::default())).collect(),
            cap: entries.div_ceil(n),
            hits: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    fn stripe_of(&self, key: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % self.stripes.len() as u64) as usize
    }

    fn lock(&self, stripe: usize) -> MutexGuard<'_, Stripe> {
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// What the tier holds under `key`.
    pub(super) fn get(&self, key: &str) -> Option<Held> {
        let mut stripe = self.lock(self.stripe_of(key));
        let slot = stripe.slots.get_mut(key)?;
        slot.referenced = true;
        Some(slot.held.clone())
    }

    /// Counts a lookup answered from memory.
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Taken before the Redis call whose answer for `key` may be held ([`Tier::hold`]).
    pub(super) fn ticket(&self, key: &str) -> Ticket {
        let stripe = self.stripe_of(key);
        Ticket {
            stripe,
            generation: self.lock(stripe).generation,
        }
    }

    /// Holds `held` under `key` unless the key's stripe changed since `ticket` was taken
    /// (an invalidation, eviction or flush came between). Returns whether it is held.
    pub(super) fn hold(&self, key: &str, held: Held, ticket: Ticket) -> bool {
        if let Held::Entry(Entry::Record(r)) = &held {
            if r.json.len() > MAX_HELD_BYTES {
                return false;
            }
        }
        debug_assert_eq!(ticket.stripe, self.stripe_of(key));
        let mut stripe = self.lock(ticket.stripe);
        if stripe.generation != ticket.generation {
            return false;
        }
        if let Some(slot) = stripe.slots.get_mut(key) {
            slot.held = held;
            return true;
        }
        stripe.make_room(self.cap);
        let seq = stripe.next_seq;
        stripe.next_seq += 1;
        stripe.clock.push_back((seq, key.to_owned()));
        stripe.slots.insert(
            key.to_owned(),
            Slot {
                held,
                referenced: false,
                seq,
            },
        );
        stripe.compact(self.cap);
        true
    }

    /// Redis said `key` changed: what is held under it goes, and no answer read before
    /// is held.
    pub(super) fn invalidate(&self, key: &str) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.evict(key);
    }

    /// `key` goes (this gateway wrote or forgot the record), and no answer read before
    /// is held.
    pub(super) fn evict(&self, key: &str) {
        let mut stripe = self.lock(self.stripe_of(key));
        stripe.generation += 1;
        stripe.slots.remove(key);
    }

    /// Everything goes, and no answer read before is held.
    pub(super) fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.stripes.len() {
            let mut stripe = self.lock(i);
            stripe.generation += 1;
            stripe.slots.clear();
            stripe.clock.clear();
        }
    }

    pub(super) fn stats(&self) -> TierStats {
        let entries = (0..self.stripes.len())
            .map(|i| self.lock(i).slots.len() as u64)
            .sum();
        TierStats {
            hits: self.hits.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachedRecord;
    use crate::wal::Lsn;

    fn record(version: i64) -> Held {
        Held::Entry(Entry::Record(CachedRecord {
            version,
            seen_at: Lsn(1),
            json: format!(r#"{{"version":{version}}}"#),
        }))
    }

    fn held(tier: &Tier, key: &str, value: Held) -> bool {
        let ticket = tier.ticket(key);
        tier.hold(key, value, ticket)
    }

    #[test]
    fn holds_what_it_is_given_until_invalidated() {
        let tier = Tier::new(100);
        assert_eq!(tier.get("k"), None);
        assert!(held(&tier, "k", record(1)));
        assert_eq!(tier.get("k"), Some(record(1)));
        assert!(held(&tier, "m", Held::Marker(None)));
        assert_eq!(tier.get("m"), Some(Held::Marker(None)));
        tier.invalidate("k");
        assert_eq!(tier.get("k"), None);
        assert_eq!(tier.get("m"), Some(Held::Marker(None)), "only that key");
        let stats = tier.stats();
        assert_eq!((stats.invalidations, stats.entries), (1, 1));
    }

    #[test]
    fn an_answer_read_before_an_invalidation_is_not_held() {
        let tier = Tier::new(100);
        // The lookup takes its ticket and asks Redis; the key changes and the
        // invalidation is processed before the answer comes back to be held.
        let ticket = tier.ticket("k");
        tier.invalidate("k");
        assert!(!tier.hold("k", record(1), ticket), "stale answer refused");
        assert_eq!(tier.get("k"), None);
        // A lookup that began after the invalidation holds its answer.
        let ticket = tier.ticket("k");
        assert!(tier.hold("k", record(2), ticket));
        assert_eq!(tier.get("k"), Some(record(2)));
    }

    #[test]
    fn an_own_write_or_a_flush_refuses_answers_read_before_it() {
        let tier = Tier::new(100);
        let before_write = tier.ticket("k");
        tier.evict("k");
        assert!(!tier.hold("k", record(1), before_write));
        assert!(held(&tier, "k", record(2)));
        let before_flush = tier.ticket("j");
        tier.flush();
        assert_eq!(tier.get("k"), None, "a flush empties the tier");
        assert!(!tier.hold("j", record(1), before_flush));
        let stats = tier.stats();
        assert_eq!(
            (stats.flushes, stats.entries, stats.invalidations),
            (1, 0, 0)
        );
    }

    #[test]
    fn the_bound_holds_and_a_recently_read_entry_survives_eviction() {
        // One stripe, so the order is the test's.
        let tier = Tier::new(1);
        assert_eq!(tier.stripes.len(), 1);
        assert!(held(&tier, "a", record(1)));
        assert!(held(&tier, "b", record(2)));
        assert_eq!(tier.get("a"), None, "a bound of one keeps the newest");
        assert_eq!(tier.get("b"), Some(record(2)));

        let tier = Tier::new(3);
        let keys: Vec<String> = (0..3).map(|i| format!("k{i}")).collect();
        // Three entries over three stripes of one each at most; fill past it many times.
        for round in 0..50 {
            for k in &keys {
                held(&tier, &format!("{k}-{round}"), record(round));
            }
            assert!(tier.stats().entries <= 3, "round {round}");
        }
    }

    #[test]
    fn clock_gives_a_read_entry_a_second_chance() {
        let tier = Tier {
            stripes: vec![Mutex::new(Stripe::default())].into_boxed_slice(),
            cap: 2,
            hits: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        };
        assert!(held(&tier, "old-hot", record(1)));
        assert!(held(&tier, "old-cold", record(2)));
        assert!(tier.get("old-hot").is_some());
        assert!(held(&tier, "new", record(3)));
        assert!(tier.get("old-hot").is_some(), "read since held: kept");
        assert_eq!(tier.get("old-cold"), None, "never read: evicted");
        assert_eq!(tier.stats().entries, 2);
    }

    #[test]
    fn invalidated_keys_do_not_grow_the_queue_without_bound() {
        let tier = Tier::new(2);
        for i in 0..10_000 {
            held(&tier, "k", record(i));
            tier.invalidate("k");
        }
        let queued: usize = (0..tier.stripes.len())
            .map(|i| tier.lock(i).clock.len())
            .sum();
        assert!(queued <= 2 * (2 * tier.cap + 17), "{queued} queued");
    }

    #[test]
    fn a_large_record_is_left_in_redis() {
        let tier = Tier::new(10);
        let big = Held::Entry(Entry::Record(CachedRecord {
            version: 1,
            seen_at: Lsn(0),
            json: format!("{{\"x\":\"{}\"}}", "y".repeat(MAX_HELD_BYTES)),
        }));
        assert!(!held(&tier, "big", big));
        assert_eq!(tier.get("big"), None);
    }
}
