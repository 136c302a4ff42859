//! Values kept one per OS thread: connection pools and Redis connections that are
//! driven on the thread that uses them.
//!
//! A connection's driver task runs on the runtime that opened it. When every HTTP worker
//! shares one pool, a query on one worker wakes the driver on another thread and back
//! again (two cross-thread wake-ups per round trip), and a worker stopping on SIGTERM
//! kills connections other workers' requests are using. One pool per thread avoids
//! both: a worker's connections are opened on its own runtime, serve only its own
//! requests, and stop with it once its requests have finished.
//!
//! [`PerThread`] is the owner's handle; the values live in a thread-local list. A value
//! whose owner is gone is dropped the next time its thread makes a value, or when the
//! thread ends; owners close what they made through their own registry when they stop.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Slot {
    id: u64,
    owner: Weak<()>,
    value: Box<dyn Any>,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// One `T` per thread that asks, made on that thread by the caller's `make`.
pub(crate) struct PerThread<T> {
    id: u64,
    alive: Arc<()>,
    _value: PhantomData<fn() -> T>,
}

impl<T: Clone + 'static> PerThread<T> {
    pub(crate) fn new() -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            _value: PhantomData,
        }
    }

    /// This thread's value; `make` runs the first time this thread asks. While the thread
    /// is being torn down (thread-locals gone) every call makes a fresh value.
    pub(crate) fn get_or(&self, make: impl FnOnce() -> T) -> T {
        let found = SLOTS.try_with(|slots| {
            slots
                .borrow()
                .iter()
                .find(|s| s.id == self.id)
                .and_then(|s| s.value.downcast_ref::<T>())
                .cloned()
        });
        if let Ok(Some(value)) = found {
            return value;
        }
        // Made outside the borrow, so `make` may use other per-thread values.
        let value = make();
        let swept = SLOTS.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            // Values of owners that are gone, dropped once the list is released.
            let dead: Vec<Slot> = slots
                .extract_if(.., |s| s.owner.strong_count() == 0 || s.id == self.id)
                .collect();
            slots.push(Slot {
                id: self.id,
                owner: Arc::downgrade(&self.alive),
                value: Box::new(value.clone()),
            });
            dead
        });
        drop(swept);
        value
    }
}

impl<T: 'static> PerThread<T> {
    /// Forgets this thread's value (a broken connection, say): the next
    /// [`get_or`](Self::get_or) on this thread makes a new one.
    pub(crate) fn reset(&self) {
        let removed = SLOTS.try_with(|slots| {
            slots
                .borrow_mut()
                .extract_if(.., |s| s.id == self.id)
                .collect::<Vec<Slot>>()
        });
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn one_value_per_thread_made_once_on_each() {
        let made = Arc::new(AtomicUsize::new(0));
        let per = Arc::new(PerThread::<usize>::new());
        let get = {
            let (made, per) = (made.clone(), per.clone());
            move || per.get_or(|| made.fetch_add(1, Ordering::SeqCst) + 100)
        };
        let here = get();
        assert_eq!(get(), here, "the same thread gets the same value");
        let get2 = get.clone();
        let there = std::thread::spawn(move || (get2(), get2())).join().unwrap();
        assert_eq!(there.0, there.1);
        assert_ne!(there.0, here, "another thread gets its own");
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn values_of_dropped_owners_are_released() {
        let value = Arc::new(());
        let first = PerThread::<Arc<()>>::new();
        first.get_or(|| value.clone());
        assert_eq!(Arc::strong_count(&value), 2, "ours and the slot's");
        drop(first);
        // The next value made on this thread sweeps the dead owner's slot.
        let second = PerThread::<u8>::new();
        second.get_or(|| 1);
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn a_reset_value_is_made_again_on_that_thread_only() {
        let per = Arc::new(PerThread::<u32>::new());
        assert_eq!(per.get_or(|| 1), 1);
        let other = {
            let per = per.clone();
            std::thread::spawn(move || per.get_or(|| 7)).join().unwrap()
        };
        assert_eq!(other, 7);
        per.reset();
        assert_eq!(per.get_or(|| 2), 2, "made again after the reset");
        assert_eq!(per.get_or(|| 3), 2, "and kept");
    }
}
