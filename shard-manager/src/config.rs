//! The cluster's typed configuration: layered loading and start-up validation.
//!
//! Layers, later wins: `config/default.toml` (from the working directory, or the copy
//! built into the binary when there is none), then the `--config` file, then
//! environment variables `SHARDGATE__SECTION__FIELD`.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::router::Router;

/// Most ring points per shard per unit of weight (`routing.vnodes`).
pub const MAX_VNODES: u32 = 4096;
/// Largest `routing.weights` entry.
pub const MAX_WEIGHT: u32 = 64;

/// The defaults `./setup.sh up` matches, compiled in so a binary runs anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Everything shard-manager needs: servers, routing, tables, cache.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterSettings {
    pub database: DatabaseSettings,
    pub routing: RoutingSettings,
    pub tables: TableSettings,
    pub shards: Vec<ShardSettings>,
    #[serde(default)]
    pub replication: ReplicationSettings,
    #[serde(default)]
    pub cache: CacheSettings,
}

/// Replica health, lag limits and consistency waits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReplicationSettings {
    /// How often every server is checked (up/down, WAL position, lag).
    pub check_interval_ms: u64,
    /// A check that takes longer counts as a failure.
    pub check_timeout_ms: u64,
    /// How long a replica that failed takes no reads (a passing check lifts it sooner).
    pub ban_ms: u64,
    /// A replica further behind than this many WAL bytes takes no reads.
    pub max_lag_bytes: u64,
    /// A replica further behind than this (time since the primary passed the replica's
    /// replay position) takes no reads.
    pub max_lag_ms: u64,
    /// A read carrying a write token waits this long for a replica to replay the write
    /// before it reads the primary instead.
    pub ryw_wait_ms: u64,
    /// `x-durability: replica` waits this long for a replica to apply the write.
    pub durability_timeout_ms: u64,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self {
            check_interval_ms: 500,
            check_timeout_ms: 1000,
            ban_ms: 5000,
            max_lag_bytes: 16 * 1024 * 1024,
            max_lag_ms: 5000,
            ryw_wait_ms: 50,
            durability_timeout_ms: 2000,
        }
    }
}

impl ReplicationSettings {
    pub fn check_interval(&self) -> Duration {
        Duration::from_millis(self.check_interval_ms)
    }
    /// Lag older than this is unknown: three missed checks.
    pub fn lag_fresh_for(&self) -> Duration {
        Duration::from_millis(self.check_interval_ms * 3 + self.check_timeout_ms)
    }
}

/// How to reach and use the PostgreSQL servers.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub user: String,
    /// Wrapped so it never appears in logs or `Debug` output.
    pub password: SecretString,
    pub dbname: String,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub pool_max_size: usize,
    pub pool_wait_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
    pub fn pool_wait_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_wait_timeout_ms)
    }
}

/// Which placement function is used (see [`crate::strategy`] for each one's guarantees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// `xxh3_64(key) % slot_count`, slots mapped to shards by ranges.
    Slots,
    /// `xxh3_64(key) mod N`, or `id mod N` with `numeric`.
    Modulo,
    /// Consistent hashing: `vnodes × weight` points per shard on a 64-bit ring.
    HashRing,
    /// `[[routing.ranges]]`: key ranges to shards, lexicographic or `numeric`.
    Range,
}

impl Strategy {
    /// The name used in configuration and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slots => "slots",
            Self::Modulo => "modulo",
            Self::HashRing => "hash_ring",
            Self::Range => "range",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How keys are placed on shards. Fixed for the life of a cluster: changing any of it
/// moves data.
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingSettings {
    pub strategy: Strategy,
    /// `hash % slot_count` is the slot: it places keys under `slots` and is stored with
    /// every record under all strategies, for data-movement statistics.
    pub slot_count: u32,
    /// `modulo` and `range` only: keys are integers (`i64`), divided or compared as
    /// numbers; a key that is not one is refused.
    #[serde(default)]
    pub numeric: bool,
    /// `hash_ring` only: ring points per shard per unit of weight. More points, more even
    /// spread (relative spread about 1/√vnodes) at the cost of memory and lookup depth.
    #[serde(default = "default_vnodes")]
    pub vnodes: u32,
    /// `hash_ring` only: one weight per shard, in `[[shards]]` order, multiplying its
    /// points; empty = weight 1 each.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// `range` only: the key ranges in key order, covering the whole key space.
    #[serde(default)]
    pub ranges: Vec<RangeSettings>,
}

fn default_vnodes() -> u32 {
    256
}

impl Default for RoutingSettings {
    /// The foundation's placement: 1024 slots, even ranges.
    fn default() -> Self {
        Self {
            strategy: Strategy::Slots,
            slot_count: 1024,
            numeric: false,
            vnodes: default_vnodes(),
            weights: Vec::new(),
            ranges: Vec::new(),
        }
    }
}

/// One `[[routing.ranges]]` entry: keys in `[from, to)` live on `shard`.
#[derive(Debug, Clone, Deserialize)]
pub struct RangeSettings {
    /// The owning shard's index in `[[shards]]` order.
    pub shard: u32,
    /// Inclusive lower bound; omitted on the first range (the start of the key space).
    #[serde(default)]
    pub from: Option<String>,
    /// Exclusive upper bound; omitted on the last range (the end of the key space).
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableSettings {
    pub allowed: Vec<String>,
}

/// One shard: exactly one primary and any number of replicas, as `host:port`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardSettings {
    pub primary: String,
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Inclusive slot ranges, `"0-341"` or `"7"`; omitted everywhere = even ranges.
    /// `slots` strategy only.
    #[serde(default)]
    pub slots: Vec<String>,
    /// How eventual reads are spread over the qualifying replicas.
    #[serde(default)]
    pub balance: Balance,
    /// Let the primary take eventual reads too (it always takes them when no replica
    /// qualifies).
    #[serde(default)]
    pub read_primary: bool,
}

/// Read balancing among a shard's replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each read goes to the next replica in turn.
    #[default]
    RoundRobin,
    /// Each read goes to the replica with the fewest reads in flight.
    LeastOutstanding,
}

/// The optional Redis read-through cache.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub enabled: bool,
    pub url: String,
    pub prefix: String,
    pub ttl_secs: u64,
    /// Every Redis call is bounded by this; past it the request goes to the shard.
    pub timeout_ms: u64,
    /// Consecutive Redis failures that open the breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker bypasses Redis.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
}

fn default_breaker_failures() -> u32 {
    3
}

fn default_breaker_open_ms() -> u64 {
    1000
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "redis://127.0.0.1:26379".into(),
            prefix: "shardgate".into(),
            ttl_secs: 300,
            timeout_ms: 10,
            breaker_failures: default_breaker_failures(),
            breaker_open_ms: default_breaker_open_ms(),
        }
    }
}

/// A configuration that could not be loaded or does not describe a working cluster.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not load configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Loads any settings type from the layers described in the module doc.
pub fn load<T: DeserializeOwned>(overlay: Option<&Path>) -> Result<T, ConfigError> {
    let base = Path::new("config/default.toml");
    let mut builder = config::Config::builder();
    builder = if base.exists() {
        builder.add_source(config::File::from(base))
    } else {
        builder.add_source(config::File::from_str(
            DEFAULT_CONFIG,
            config::FileFormat::Toml,
        ))
    };
    if let Some(path) = overlay {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("SHARDGATE")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("tables.allowed")
            .with_list_parse_key("routing.weights")
            .try_parsing(true),
    );
    Ok(builder.build()?.try_deserialize()?)
}

impl ClusterSettings {
    /// Checks everything that would otherwise fail later, and says exactly what is wrong.
    /// Returns the slot ranges per shard (empty vectors = even split).
    pub fn validate(&self) -> Result<Vec<Vec<(u32, u32)>>, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.shards.is_empty() {
            return bad("no [[shards]] configured; at least one is needed".into());
        }
        let slots = self.routing.slot_count;
        if slots == 0 || slots > 1 << 16 {
            return bad(format!("routing.slot_count is {slots}; use 1 to 65536"));
        }
        if self.routing.strategy == Strategy::Slots && (slots as usize) < self.shards.len() {
            return bad(format!(
                "routing.slot_count ({slots}) is smaller than the number of shards ({})",
                self.shards.len()
            ));
        }
        let mut seen = HashSet::new();
        for (i, shard) in self.shards.iter().enumerate() {
            for (role, addr) in std::iter::once(("primary", &shard.primary))
                .chain(shard.replicas.iter().map(|r| ("replica", r)))
            {
                parse_addr(addr)
                    .map_err(|m| ConfigError::Invalid(format!("shard {i} {role} {addr:?}: {m}")))?;
                if !seen.insert(addr.as_str()) {
                    return bad(format!(
                        "server {addr} appears twice; each server belongs to one shard once"
                    ));
                }
            }
        }
        let db = &self.database;
        for (name, v) in [
            ("database.connect_timeout_ms", db.connect_timeout_ms),
            ("database.statement_timeout_ms", db.statement_timeout_ms),
            ("database.pool_wait_timeout_ms", db.pool_wait_timeout_ms),
            ("database.pool_max_size", db.pool_max_size as u64),
        ] {
            if v == 0 {
                return bad(format!("{name} must be greater than 0"));
            }
        }
        let r = &self.replication;
        for (name, v) in [
            ("replication.check_interval_ms", r.check_interval_ms),
            ("replication.check_timeout_ms", r.check_timeout_ms),
        ] {
            if v == 0 {
                return bad(format!("{name} must be greater than 0"));
            }
        }
        let c = &self.cache;
        if c.enabled {
            if c.prefix.is_empty() || c.prefix.len() > 64 || c.prefix.contains(char::is_whitespace)
            {
                return bad("cache.prefix must be 1 to 64 characters without spaces".into());
            }
            if c.timeout_ms == 0 || c.ttl_secs == 0 {
                return bad("cache.timeout_ms and cache.ttl_secs must be greater than 0".into());
            }
        }
        self.validate_tables()?;
        self.validate_routing()?;
        let ranges = self.slot_ranges()?;
        Router::try_new(&self.routing, &ranges)?;
        Ok(ranges)
    }

    /// The options that belong to one strategy are set only with that strategy.
    fn validate_routing(&self) -> Result<(), ConfigError> {
        let r = &self.routing;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let only = |option: &str, strategies: &str| {
            bad(format!(
                "{option} applies to {strategies} only, but routing.strategy is \"{}\"",
                r.strategy
            ))
        };
        let is = |s: Strategy| r.strategy == s;
        if r.numeric && !is(Strategy::Modulo) && !is(Strategy::Range) {
            return only("routing.numeric", "\"modulo\" and \"range\"");
        }
        if !r.weights.is_empty() && !is(Strategy::HashRing) {
            return only("routing.weights", "\"hash_ring\"");
        }
        if !r.ranges.is_empty() && !is(Strategy::Range) {
            return only("[[routing.ranges]]", "\"range\"");
        }
        if let Some(i) = self.shards.iter().position(|s| !s.slots.is_empty()) {
            if !is(Strategy::Slots) {
                return bad(format!(
                    "shard {i} lists slots, but routing.strategy is \"{}\"; slots apply to \"slots\" only",
                    r.strategy
                ));
            }
        }
        if is(Strategy::HashRing) {
            if r.vnodes == 0 || r.vnodes > MAX_VNODES {
                return bad(format!(
                    "routing.vnodes is {}; use 1 to {MAX_VNODES}; 100 or more keeps every shard within 1 + 4/√vnodes of its share",
                    r.vnodes
                ));
            }
            let shards = self.shards.len();
            if !r.weights.is_empty() && r.weights.len() != shards {
                return bad(format!(
                    "routing.weights lists {} weights for {shards} shards; give one per shard, or none",
                    r.weights.len()
                ));
            }
            if let Some(i) = r.weights.iter().position(|w| !(1..=MAX_WEIGHT).contains(w)) {
                return bad(format!(
                    "routing.weights[{i}] (shard {i}) is {}; weights are 1 to {MAX_WEIGHT}",
                    r.weights[i]
                ));
            }
        }
        if is(Strategy::Range) && r.ranges.is_empty() {
            return bad(
                "routing.strategy is \"range\" but no [[routing.ranges]] is listed; list ranges \
                 covering the whole key space"
                    .into(),
            );
        }
        Ok(())
    }

    fn validate_tables(&self) -> Result<(), ConfigError> {
        if self.tables.allowed.is_empty() {
            return Err(ConfigError::Invalid(
                "tables.allowed is empty; clients could not use any table".into(),
            ));
        }
        let mut seen = HashSet::new();
        for t in &self.tables.allowed {
            let ok = !t.is_empty()
                && t.len() <= 63
                && t.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "table name {t:?} must match [a-z_][a-z0-9_]{{0,62}}"
                )));
            }
            if !seen.insert(t) {
                return Err(ConfigError::Invalid(format!("table {t:?} is listed twice")));
            }
        }
        Ok(())
    }

    fn slot_ranges(&self) -> Result<Vec<Vec<(u32, u32)>>, ConfigError> {
        let count = self.routing.slot_count;
        let explicit = self.shards.iter().filter(|s| !s.slots.is_empty()).count();
        if explicit == 0 {
            return Ok(vec![Vec::new(); self.shards.len()]);
        }
        if explicit != self.shards.len() {
            return Err(ConfigError::Invalid(
                "either every shard lists its slots or none does".into(),
            ));
        }
        let mut owner: Vec<Option<usize>> = vec![None; count as usize];
        let mut all = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let mut ranges = Vec::new();
            for text in &shard.slots {
                let (a, b) = parse_range(text, count)
                    .map_err(|m| ConfigError::Invalid(format!("shard {i} slots {text:?}: {m}")))?;
                for slot in a..=b {
                    if let Some(other) = owner[slot as usize].replace(i) {
                        return Err(ConfigError::Invalid(format!(
                            "slot {slot} is owned by shard {other} and shard {i}"
                        )));
                    }
                }
                ranges.push((a, b));
            }
            all.push(ranges);
        }
        if let Some(slot) = owner.iter().position(Option::is_none) {
            return Err(ConfigError::Invalid(format!(
                "slot {slot} belongs to no shard; every slot 0..{count} needs exactly one"
            )));
        }
        Ok(all)
    }
}

/// `host:port` with a non-empty host and a valid port.
pub fn parse_addr(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_string())?;
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number from 1 to 65535"))?;
    Ok((host, port))
}

fn parse_range(text: &str, count: u32) -> Result<(u32, u32), String> {
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} is not a slot number"))
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(text)?;
            (n, n)
        }
    };
    if a > b {
        return Err(format!("range starts after it ends ({a} > {b})"));
    }
    if b >= count {
        return Err(format!("slot {b} is out of range; slots are 0..{count}"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClusterSettings {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        cfg.try_deserialize().unwrap()
    }

    fn invalid(s: &ClusterSettings) -> String {
        match s.validate() {
            Err(ConfigError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn default_config_is_valid_and_matches_setup() {
        let s = settings();
        assert_eq!(s.validate().unwrap().len(), 3);
        assert_eq!(s.shards[0].primary, "127.0.0.1:25432");
        assert_eq!(s.shards[2].replicas, vec!["127.0.0.1:25534".to_string()]);
        assert_eq!(s.routing.slot_count, 1024);
    }

    #[test]
    fn duplicate_server_is_named() {
        let mut s = settings();
        s.shards[1].replicas = vec!["127.0.0.1:25432".into()];
        assert!(invalid(&s).contains("127.0.0.1:25432 appears twice"));
    }

    #[test]
    fn slot_gaps_and_overlaps_are_named() {
        let mut s = settings();
        s.routing.slot_count = 10;
        s.shards.truncate(2);
        s.shards[0].slots = vec!["0-4".into()];
        s.shards[1].slots = vec!["6-9".into()];
        assert!(invalid(&s).contains("slot 5 belongs to no shard"));
        s.shards[1].slots = vec!["4-9".into()];
        assert!(invalid(&s).contains("slot 4 is owned by shard 0 and shard 1"));
        s.shards[1].slots = vec!["5-9".into()];
        assert_eq!(s.validate().unwrap(), vec![vec![(0, 4)], vec![(5, 9)]]);
    }

    #[test]
    fn bad_addresses_and_tables_are_named() {
        let mut s = settings();
        s.shards[0].primary = "localhost".into();
        assert!(invalid(&s).contains("expected host:port"));
        let mut s = settings();
        s.tables.allowed.push("Users; DROP".into());
        assert!(invalid(&s).contains("must match"));
    }

    /// The defaults with `toml` layered on top, as a `--config` file would be.
    fn with_overlay(toml: &str) -> ClusterSettings {
        config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn every_strategy_reads_its_options_from_toml() {
        let ring =
            with_overlay("[routing]\nstrategy = \"hash_ring\"\nvnodes = 100\nweights = [1, 2, 1]");
        assert_eq!(ring.routing.strategy, Strategy::HashRing);
        assert_eq!(ring.validate().unwrap(), vec![Vec::<(u32, u32)>::new(); 3]);
        let modulo = with_overlay("[routing]\nstrategy = \"modulo\"\nnumeric = true");
        assert!(modulo.validate().is_ok());
        let range = with_overlay(
            "[routing]\nstrategy = \"range\"\nnumeric = true\n\
             [[routing.ranges]]\nshard = 0\nto = 1000\n\
             [[routing.ranges]]\nshard = 1\nfrom = 1000\nto = \"1000000\"\n\
             [[routing.ranges]]\nshard = 2\nfrom = 1000000",
        );
        assert!(range.validate().is_ok(), "{:?}", range.validate());
        assert_eq!(range.routing.ranges[1].from.as_deref(), Some("1000"));
        assert_eq!(settings().routing.vnodes, 256);
    }

    #[test]
    fn strategy_options_out_of_place_are_named() {
        let mut s = settings();
        s.routing.numeric = true;
        assert_eq!(
            invalid(&s),
            "routing.numeric applies to \"modulo\" and \"range\" only, but routing.strategy is \"slots\""
        );
        let mut s = settings();
        s.routing.strategy = Strategy::Modulo;
        s.shards[0].slots = vec!["0-1023".into()];
        assert!(invalid(&s).starts_with("shard 0 lists slots, but routing.strategy is \"modulo\""));
        let mut s = settings();
        s.routing.weights = vec![1, 1, 1];
        assert!(invalid(&s).starts_with("routing.weights applies to \"hash_ring\" only"));
        let mut s = settings();
        s.routing.strategy = Strategy::Range;
        assert!(invalid(&s).contains("no [[routing.ranges]] is listed"));
    }

    #[test]
    fn ring_vnodes_and_weights_are_checked() {
        let mut s = settings();
        s.routing.strategy = Strategy::HashRing;
        s.routing.vnodes = 0;
        assert!(invalid(&s).starts_with("routing.vnodes is 0; use 1 to 4096"));
        s.routing.vnodes = 100;
        s.routing.weights = vec![1, 2];
        assert_eq!(
            invalid(&s),
            "routing.weights lists 2 weights for 3 shards; give one per shard, or none"
        );
        s.routing.weights = vec![1, 0, 2];
        assert_eq!(
            invalid(&s),
            "routing.weights[1] (shard 1) is 0; weights are 1 to 64"
        );
        s.routing.weights = vec![1, 3, 2];
        assert!(s.validate().is_ok());
    }

    #[test]
    fn range_gaps_overlaps_and_bad_bounds_are_named() {
        let range =
            |ranges: &str| with_overlay(&format!("[routing]\nstrategy = \"range\"\n{ranges}"));
        let gap = range(
            "[[routing.ranges]]\nshard = 0\nto = \"h\"\n\
             [[routing.ranges]]\nshard = 1\nfrom = \"i\"\nto = \"p\"\n\
             [[routing.ranges]]\nshard = 2\nfrom = \"p\"",
        );
        assert_eq!(
            invalid(&gap),
            "routing.ranges: keys from \"h\" up to \"i\" belong to no range (range 0 ends at \"h\", \
             range 1 starts at \"i\")"
        );
        let overlap = range(
            "[[routing.ranges]]\nshard = 0\nto = \"h\"\n\
             [[routing.ranges]]\nshard = 1\nfrom = \"g\"\nto = \"p\"\n\
             [[routing.ranges]]\nshard = 2\nfrom = \"p\"",
        );
        assert_eq!(
            invalid(&overlap),
            "routing.ranges: keys from \"g\" up to \"h\" are in range 0 and range 1"
        );
        let unknown = range("[[routing.ranges]]\nshard = 3");
        assert_eq!(
            invalid(&unknown),
            "routing.ranges: range 0 names shard 3, but the shards are 0 to 2"
        );
        let mut numeric = range(
            "numeric = true\n[[routing.ranges]]\nshard = 0\nto = \"ten\"\n\
             [[routing.ranges]]\nshard = 1\nfrom = 10",
        );
        numeric.shards.truncate(2);
        assert_eq!(
            invalid(&numeric),
            "routing.ranges: range 0 to \"ten\" is not an integer (routing.numeric is on)"
        );
    }
}
