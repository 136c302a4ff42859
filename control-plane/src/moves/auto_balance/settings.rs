//! `[balancer]`: whether the automatic balancer runs, and the bounds of its hysteresis
//! (the margin, the hold, the spacing, the hourly cap) and of its checks.

use serde::{Deserialize, Serialize};

/// `[balancer]`: the automatic balancer, off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BalancerSettings {
    /// Move slots by load automatically (one runner in the cluster). Off by default: a
    /// move costs a copy of the slots' rows, which an operator may prefer to schedule.
    pub auto: bool,
    /// How much busier than the mean the busiest shard must be to act, in percent (25:
    /// a quarter above the mean). Below it a move would cost more than it evens out.
    pub margin_percent: u32,
    /// How long the busiest shard must stay above the margin, seconds: a burst shorter
    /// than this is not a trend.
    pub hold_secs: u64,
    /// Least time between two moves, seconds: the load is measured under the new
    /// placement (a minute's window, and the figures' second) before anything moves again.
    pub spacing_secs: u64,
    /// Most slots moved in any hour, so a balancer gone wrong cannot churn the cluster.
    pub max_slots_per_hour: u32,
    /// How often the runner weighs the slots, seconds.
    pub check_secs: u64,
}

impl Default for BalancerSettings {
    fn default() -> Self {
        Self {
            auto: false,
            margin_percent: 25,
            hold_secs: 60,
            spacing_secs: 300,
            max_slots_per_hour: 64,
            check_secs: 10,
        }
    }
}
