//! What a gateway knows besides the recorder's own data, passed at scrape time to be
//! exposed with it: slot moves, refused requests, the map, transactions, batches, requests held
//! for a new primary, the cache's memory tier, its process's figures and,
//! with traces on, its spans.

use prometheus::proto::MetricFamily;

use crate::exposition::batches::BatchSizes;
use crate::exposition::cache_memory::MemoryTier;
use crate::exposition::changes::ChangeStreams;
use crate::exposition::held::HeldRequests;
use crate::exposition::limited::LimitedCount;
use crate::exposition::map::MapGauges;
use crate::exposition::moves::MoveProgress;
use crate::exposition::process::ProcessStats;
use crate::exposition::traces::TraceSpans;
use crate::exposition::transactions::TransactionStats;

/// A gateway's own figures for one scrape, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct GatewayFigures<'a> {
    /// Slot moves in progress.
    pub moves: &'a [MoveProgress],
    /// Requests API keys' limits refused, by key and limit.
    pub limited: &'a [LimitedCount],
    /// The shard map it routes with: its version, the live gateways, each shard's term
    /// and failovers.
    pub map: &'a MapGauges,
    /// Its transactions: counts by protocol and outcome, parts in doubt.
    pub transactions: &'a TransactionStats,
    /// Requests per batch sent to each server.
    pub batches: &'a [BatchSizes],
    /// Requests held for shards whose primary was changing hands or down.
    pub held: &'a HeldRequests,
    /// Its change streams, per table.
    pub changes: &'a ChangeStreams,
    /// Its cache's memory tier, when it has one.
    pub memory_tier: Option<&'a MemoryTier>,
    /// Its trace spans, exported or dropped, when it exports traces.
    pub spans: Option<&'a TraceSpans>,
    /// Its process's CPU, memory, file descriptors and start time (`process_*`), where
    /// `/proc` tells them.
    pub process: Option<&'a ProcessStats>,
}

impl GatewayFigures<'_> {
    /// The families, in the order the exposition has always listed them.
    pub(crate) fn families(&self) -> Vec<MetricFamily> {
        let mut families = crate::exposition::batches::families(self.batches);
        families.extend(crate::exposition::moves::families(self.moves));
        families.extend(crate::exposition::limited::families(self.limited));
        families.extend(crate::exposition::map::families(self.map));
        families.extend(crate::exposition::transactions::families(self.transactions));
        families.extend(crate::exposition::held::families(self.held));
        families.extend(crate::exposition::changes::families(self.changes));
        if let Some(tier) = self.memory_tier {
            families.extend(crate::exposition::cache_memory::families(tier));
        }
        if let Some(spans) = self.spans {
            families.extend(crate::exposition::traces::families(spans));
        }
        if let Some(process) = self.process {
            families.extend(crate::exposition::process::families(process));
        }
        families
    }
}
