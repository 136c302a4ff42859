//! Waiting readers' looks for changes, shared: one cut per tick for every reader of the
//! gateway that waits for a change, whatever its table or cursor.
//!
//! A reader waiting for a change looks again at each tick of one clock the gateway's
//! readers share (every [`POLL_EVERY`] since the gateway started), and asks for a cut
//! *begun at or after* that tick. The first reader of a tick takes it; the others find
//! it taken and read at it. A cut begun after the tick is newer than any cursor the
//! reader held before the tick (that cursor's cut was taken, on every shard, before the
//! reader went to sleep), so a shared cut never moves a cursor back.
//!
//! Only waiting looks share: a page asked for now takes its own cut, so concurrent
//! first pages never queue behind each other. A failed cut is not shared: the next
//! reader of the tick tries again (and waits for the failed one first).

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Between two looks for changes while a reader waits for one.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// The newest shared cut, and the ticks' clock (see the module doc). Generic over the
/// cut, which it only keeps and clones.
#[derive(Debug)]
pub struct Ticks<C> {
    origin: Instant,
    every: Duration,
    /// The newest shared cut: when it was begun, for which shards, and the cut. Held
    /// while a cut is taken, so a tick's other readers wait for it.
    newest: Mutex<Option<Shared<C>>>,
}

#[derive(Debug)]
struct Shared<C> {
    begun: Instant,
    shards: Vec<u32>,
    cut: C,
}

impl<C: Clone> Default for Ticks<C> {
    fn default() -> Self {
        Self::new(POLL_EVERY)
    }
}

impl<C: Clone> Ticks<C> {
    pub fn new(every: Duration) -> Self {
        Self {
            origin: Instant::now(),
            every: every.max(Duration::from_millis(1)),
            newest: Mutex::new(None),
        }
    }

    /// The first tick after `now`.
    pub fn next_tick(&self, now: Instant) -> Instant {
        let every = self.every.as_nanos();
        let since = now.saturating_duration_since(self.origin).as_nanos();
        let ticks = since / every + 1;
        self.origin + Duration::from_nanos((ticks * every) as u64)
    }

    /// A cut of `shards` begun at or after `tick`: the shared one when it is, else one
    /// `take` takes (and shares). Safe to drop at any await: a dropped take shares
    /// nothing and lets the next reader take its own.
    pub async fn cut_since<E, F>(&self, tick: Instant, shards: &[u32], take: F) -> Result<C, E>
    where
        F: Future<Output = Result<C, E>>,
    {
        let mut newest = self.newest.lock().await;
        if let Some(shared) = newest.as_ref() {
            if shared.begun >= tick && shared.shards == shards {
                return Ok(shared.cut.clone());
            }
        }
        let begun = Instant::now();
        let cut = take.await?;
        *newest = Some(Shared {
            begun,
            shards: shards.to_vec(),
            cut: cut.clone(),
        });
        Ok(cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_ticks_readers_share_one_cut_and_the_next_tick_takes_a_new_one() {
        let ticks: Arc<Ticks<u32>> = Arc::new(Ticks::new(Duration::from_millis(40)));
        let taken = Arc::new(AtomicU32::new(0));
        let tick = ticks.next_tick(Instant::now());
        tokio::time::sleep_until(tick).await;
        let readers = (0..5).map(|_| {
            let ticks = ticks.clone();
            let taken = taken.clone();
            tokio::spawn(async move {
                ticks
                    .cut_since(tick, &[0, 1], async {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        Ok::<_, ()>(taken.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
            })
        });
        let cuts: Vec<u32> = futures_util::future::join_all(readers)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert_eq!(cuts, vec![1; 5], "one cut for the tick's five readers");
        // The next tick is after the shared cut began: a new cut.
        let next = ticks.next_tick(Instant::now());
        let after = next.duration_since(tick).as_millis();
        assert!(
            after >= 40 && after.is_multiple_of(40),
            "ticks 40 ms apart: {after}"
        );
        tokio::time::sleep_until(next).await;
        let cut = ticks
            .cut_since(next, &[0, 1], async {
                Ok::<_, ()>(taken.fetch_add(1, Ordering::SeqCst) + 1)
            })
            .await;
        assert_eq!(cut, Ok(2));
        // Other shards: a new cut, even at the same tick.
        let cut = ticks
            .cut_since(next, &[0, 1, 2], async {
                Ok::<_, ()>(taken.fetch_add(1, Ordering::SeqCst) + 1)
            })
            .await;
        assert_eq!(cut, Ok(3));
    }

    #[tokio::test]
    async fn a_cut_begun_before_the_tick_is_not_shared_and_a_failure_is_not_kept() {
        let ticks: Ticks<u32> = Ticks::new(Duration::from_millis(40));
        let early = Instant::now();
        assert_eq!(
            ticks.cut_since(early, &[0], async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        let tick = ticks.next_tick(Instant::now());
        tokio::time::sleep_until(tick).await;
        assert_eq!(
            ticks
                .cut_since(tick, &[0], async { Err::<u32, _>("down") })
                .await,
            Err("down")
        );
        assert_eq!(
            ticks
                .cut_since(tick, &[0], async { Ok::<_, &str>(2) })
                .await,
            Ok(2)
        );
        assert_eq!(
            ticks
                .cut_since(tick, &[0], async { Ok::<_, &str>(3) })
                .await,
            Ok(2)
        );
    }
}
