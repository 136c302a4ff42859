//! The automatic balancer (`[balancer] auto = true`, off by default): one runner in the
//! whole cluster moves slots by load when a shard stays busier than the others.
//!
//! Every gateway starts the task; the one that holds the balancer's advisory lock on
//! the metadata database runs it, the others wait for the lock (a dead runner's
//! connection ends, and its lock with it). Every `check_secs` the runner weighs each
//! slot by the last minute's requests of every live gateway (the load they publish for
//! the cluster view) and decides, with hysteresis:
//!
//! - it acts only when the busiest shard has stayed above the mean by more than
//!   `margin_percent` for `hold_secs` without a break (one burst is not a trend);
//! - it then runs the plan's moves (from the busiest shard, to within the margin of
//!   the mean), one after another, and none again for `spacing_secs`, so the load is measured under the new
//!   placement before anything else moves;
//! - it moves at most `max_slots_per_hour` slots in any hour.
//!
//! Each decision and non-decision is logged (`balancer` target, with the shards' totals
//! and the reason) and written in the map's history as a note (action `balancer`, the
//! version it saw): every move it decides, and a hold when its reason's kind changes
//! ([`Journal`]), so a steady state costs one line, not one a check. With spans
//! recorded, each check is a trace of its own ([`super::spans::balance`]: the load it
//! weighed, its decision and why), linked with the trace of each move it ran. No
//! check decides while a move is running. A move it runs is an ordinary online move,
//! whose switch is a change in the history like any other.
//!
//! The spacing and the hourly cap count the balancer's `move` lines in the history
//! ([`Recent`], read at every check), whichever runner wrote them: a gateway that takes
//! the lock over after another stopped goes on with the same spacing and the same cap.
//! A move whose line cannot be written is not made. Only the hold starts again under a
//! new runner (the busiest shard must stay above the margin for `hold_secs` once more).
//!
//! ## Layout
//! - [`settings`]: `[balancer]`, [`BalancerSettings`].
//! - [`decision`]: what one check decides from the load it weighed ([`Hysteresis`],
//!   [`Decision`], [`Hold`]): pure, with its tests.
//! - [`history`]: the balancer's lines in the map's history: the moves it read back
//!   ([`Recent`]) and which holds it writes ([`Journal`]).
//! - [`task`]: the running balancer ([`Balancer`]): the lock, the checks, the moves.

pub mod decision;
pub mod history;
pub mod settings;
pub mod task;

pub use decision::{Decision, Hold, Hysteresis, Weighed};
pub use history::{Journal, Recent};
pub use settings::BalancerSettings;
pub use task::Balancer;
