//! The cache client: lookups, readers' installs, the connections to Redis and the
//! calls' bounds (see the module doc of `super` for how the cache stays fresh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use tracing::Instrument;

use crate::config::{CacheSettings, ConfigError};
use crate::routing::ShardId;
use crate::servers::per_thread::PerThread;
use crate::spans;
use crate::store::Record;
use crate::wal::Lsn;

use super::breaker::Breaker;
use super::entry::{CachedRecord, Entry};
use super::epochs::Epochs;
use super::fence::Fences;
use super::floors::LocalFloors;
use super::tier::{Held, Tier, TierStats};
use super::tracking::{Tracked, Tracking};
use super::usage::{CacheEvent, CacheUsage};

/// The atomic install (readers' and writers'), and the atomic forget.
pub(super) const INSTALL_LUA: &str = include_str!("install.lua");
pub(super) const FORGET_LUA: &str = include_str!("forget.lua");

/// How long a worker's warm-up keeps trying to reach Redis ([`Cache::warm`]).
const WARM_UP_FOR: Duration = Duration::from_secs(5);

/// The least time a new Redis connection is given to connect, whatever `timeout_ms`.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(50);

/// Most recent writes whose floors this process keeps (about 100 bytes each); past it
/// the oldest leave early behind a fence (see `floors`).
const LOCAL_FLOORS: usize = 50_000;

/// One record's identity as a 128-bit hash of table, shard key and id, each
/// length-prefixed so ("ab","c") and ("a","bc") differ.
pub(super) fn record_hash(table: &str, key: &str, id: &str) -> u128 {
    let mut buf = Vec::with_capacity(table.len() + key.len() + id.len() + 8);
    buf.extend_from_slice(&(table.len() as u32).to_le_bytes());
    buf.extend_from_slice(table.as_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(id.as_bytes());
    xxhash_rust::xxh3::xxh3_128(&buf)
}

/// A position in one shard's key space; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    pub(super) shard: ShardId,
    pub(super) n: u64,
}

/// The outcome of a lookup.
pub enum Lookup {
    /// The record, as the compact JSON it was cached as.
    Hit(CachedRecord),
    /// A tombstone: the record was deleted, and nothing newer is known.
    Gone,
    Miss(Epoch),
    Bypass,
}

/// The cache client. Connects lazily, so the gateway starts without Redis.
pub struct Cache {
    pub(super) client: redis::Client,
    pub(super) config: ConnectionManagerConfig,
    /// One multiplexed connection per thread, driven on that thread: a worker's
    /// concurrent lookups share one socket write and one read (see [`crate::per_thread`]).
    pub(super) conns: PerThread<Result<ConnectionManager, String>>,
    pub(super) prefix: String,
    /// Every shard's key epoch, shared by every gateway through the shard (`epochs`).
    pub(super) epochs: Epochs,
    pub(super) ttl_ms: u64,
    pub(super) floor_ttl_ms: u64,
    pub(super) timeout: Duration,
    pub(super) breaker: Breaker,
    pub(super) script: redis::Script,
    /// `forget.lua`, loaded with each pipeline that runs it.
    pub(super) forget_script: redis::Script,
    /// What a reader must have seen to install after an abandoned epoch (`fence`).
    pub(super) fences: Fences,
    /// Recent writes' version floors, in this process's memory (`floors`).
    pub(super) local: LocalFloors,
    /// The memory tier and the connection that keeps it exact (`cache.memory_entries`
    /// above 0).
    pub(super) memory: Option<Memory>,
}

/// The memory tier (`tier`) and its tracking connection (`tracking`).
pub(super) struct Memory {
    pub(super) tier: Arc<Tier>,
    pub(super) tracking: Tracking,
}

impl Cache {
    /// `epochs_valid_for`: how long a reading of a shard's epoch is used (one check
    /// interval plus one check timeout: see `epochs`).
    pub fn new(settings: &CacheSettings, epochs_valid_for: Duration) -> Result<Self, ConfigError> {
        // The error hides the URL's password (see `config::cache_url`).
        let client = crate::config::cache_url(&settings.url)?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(MIN_CONNECT_TIMEOUT)))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let ttl_ms = settings.ttl_secs.max(1) * 1000;
        let memory = match settings.memory_entries {
            0 => None,
            entries => {
                let tier = Arc::new(Tier::new(entries));
                let tracking = Tracking::new(
                    &client,
                    &settings.prefix,
                    timeout.max(MIN_CONNECT_TIMEOUT),
                    timeout,
                    tier.clone(),
                )
                .map_err(|e| {
                    ConfigError::Invalid(format!("cache.url: the memory tier's connection: {e}"))
                })?;
                Some(Memory { tier, tracking })
            }
        };
        Ok(Self {
            client,
            config,
            conns: PerThread::new(),
            prefix: settings.prefix.clone(),
            epochs: Epochs::new(epochs_valid_for),
            ttl_ms,
            floor_ttl_ms: (ttl_ms * 2).max(120_000),
            timeout,
            breaker: Breaker::new(
                settings.breaker_failures,
                Duration::from_millis(settings.breaker_open_ms),
            ),
            script: redis::Script::new(INSTALL_LUA),
            forget_script: redis::Script::new(FORGET_LUA),
            fences: Fences::default(),
            local: LocalFloors::new(
                Duration::from_millis((ttl_ms * 2).max(120_000)),
                LOCAL_FLOORS,
            ),
            memory,
        })
    }

    /// The memory tier's counts; None when it is off (`cache.memory_entries` 0).
    pub fn memory_stats(&self) -> Option<TierStats> {
        self.memory.as_ref().map(|m| m.tier.stats())
    }

    /// A record's entry leaves this gateway's memory tier (it wrote or forgot the record),
    /// in `epoch` and in the epoch it reads now: done before the write is acknowledged,
    /// so its own acknowledged writes are never stale here.
    pub(super) fn evict_from_memory(
        &self,
        epoch: Option<Epoch>,
        shard: ShardId,
        (table, key, id): (&str, &str, &str),
    ) {
        let Some(memory) = &self.memory else { return };
        let current = self.epoch(shard);
        for e in [epoch, current.filter(|c| Some(*c) != epoch)]
            .into_iter()
            .flatten()
        {
            memory.tier.evict(&self.value_key(e, table, key, id));
        }
    }

    /// Opens this thread's connection and loads both scripts into Redis, so that the
    /// first request this thread serves does not pay the connect and the loads within
    /// `timeout_ms` (on a busy machine that cost a first write its cache install, and
    /// the shard its cached entries). The gateway runs it on each HTTP worker as the
    /// worker starts, off any request's path. One try is bounded as a request's call is
    /// (the connection's own connect and response timeouts), so on a busy machine it
    /// may time out: it tries again, on a fresh connection, until Redis answers or
    /// [`WARM_UP_FOR`] has passed. A failure is only logged
    /// (Redis may be down at start: requests then find out as always) and counts
    /// nothing against the breaker.
    pub async fn warm(&self) {
        if let Some(memory) = &self.memory {
            // The memory tier's connection opens in the background from here too.
            memory.tracking.conn();
        }
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < WARM_UP_FOR {
            let Some(mut conn) = self.conn() else { return };
            let mut load = redis::pipe();
            for script in [INSTALL_LUA, FORGET_LUA] {
                load.cmd("SCRIPT").arg("LOAD").arg(script);
            }
            let bound = self.config_connect_timeout() + self.timeout;
            match tokio::time::timeout(bound, load.query_async::<Vec<String>>(&mut conn)).await {
                Ok(Ok(_)) => {
                    tracing::debug!("redis connection ready, scripts loaded");
                    return;
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
            // A fresh connection for this thread's next try; a request already holding
            // the old one keeps it until its call ends.
            self.conns.reset();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(error = %last, "redis not ready at start: the cache connects on first use");
    }

    /// How long a new connection may take to connect (see [`Cache::new`]).
    fn config_connect_timeout(&self) -> Duration {
        self.timeout.max(MIN_CONNECT_TIMEOUT)
    }

    /// This thread's connection (made on first use; it connects on its first command).
    pub(super) fn conn(&self) -> Option<ConnectionManager> {
        let made = self.conns.get_or(|| {
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
                .map_err(|e| e.to_string())
        });
        match made {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a redis connection");
                None
            }
        }
    }

    /// A record's value and floor keys.
    pub(super) fn keys(&self, epoch: Epoch, table: &str, key: &str, id: &str) -> (String, String) {
        let mut value = self.key_base(epoch, table, key, id);
        let mut floor = value.clone();
        value.push_str(":v");
        floor.push_str(":f");
        (value, floor)
    }

    /// A record's value key alone (a lookup's).
    pub(super) fn value_key(&self, epoch: Epoch, table: &str, key: &str, id: &str) -> String {
        let mut value = self.key_base(epoch, table, key, id);
        value.push_str(":v");
        value
    }

    pub(super) fn key_base(&self, epoch: Epoch, table: &str, key: &str, id: &str) -> String {
        // Fixed-size keys whatever the shard key and id: a 128-bit hash of both,
        // length-prefixed so ("ab","c") and ("a","bc") differ.
        let mut buf = Vec::with_capacity(key.len() + id.len() + 8);
        buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(id.as_bytes());
        let h = xxhash_rust::xxh3::xxh3_128(&buf);
        format!(
            "{}:{}.{}:{table}:{h:032x}",
            self.prefix, epoch.shard.0, epoch.n
        )
    }

    /// Runs one Redis call under the breaker and the timeout.
    pub(super) async fn call<T, F>(
        &self,
        usage: &mut CacheUsage,
        op: impl FnOnce(ConnectionManager) -> F,
    ) -> Option<T>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.breaker.is_open() {
            return None;
        }
        let conn = self.conn()?;
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, op(conn)).await;
        let took = started.elapsed();
        match result {
            Ok(Ok(v)) => {
                self.breaker.success();
                usage.redis_time = Some(usage.redis_time.unwrap_or_default() + took);
                Some(v)
            }
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                    // This thread's connection is broken: the next call makes a new one
                    // and connects at once, instead of waiting out the manager's own
                    // reconnect backoff (hits resume as soon as Redis answers again).
                    self.conns.reset();
                }
                self.failed(usage, took, &e.to_string());
                None
            }
            Err(_) => {
                self.failed(usage, took, "timed out");
                None
            }
        }
    }

    pub(super) fn failed(&self, usage: &mut CacheUsage, took: Duration, why: &str) {
        usage.push(CacheEvent::Error, took);
        if self.breaker.failure() {
            tracing::warn!(reason = why, "redis failing: cache bypassed for a while");
        }
    }

    /// Looks a record up; an entry that does not reflect the WAL position `at_least`
    /// counts as a miss. On a miss, the returned epoch is what the reader must install
    /// into after reading the shard.
    pub async fn lookup(
        &self,
        epoch: Epoch,
        id: (&str, &str, &str),
        at_least: Lsn,
        usage: &mut CacheUsage,
    ) -> Lookup {
        let span = spans::cache("cache lookup", epoch.shard);
        let (found, bypass_reason) = self
            .lookup_traced(epoch, id, at_least, usage)
            .instrument(span.clone())
            .await;
        let outcome = match found {
            Lookup::Hit(_) | Lookup::Gone => "hit",
            Lookup::Miss(_) => "miss",
            Lookup::Bypass => "bypass",
        };
        spans::cache_outcome(&span, outcome, bypass_reason);
        found
    }

    /// [`Cache::lookup`], with why it bypassed the cache, if it did.
    async fn lookup_traced(
        &self,
        epoch: Epoch,
        (table, key, id): (&str, &str, &str),
        at_least: Lsn,
        usage: &mut CacheUsage,
    ) -> (Lookup, Option<&'static str>) {
        let value_key = self.value_key(epoch, table, key, id);
        let below = super::retired::retired_key(&self.prefix, epoch.shard);
        let started = Instant::now();
        let (got, below, from_memory) = match self.in_memory(&value_key, &below) {
            Some((entry, below)) => (Some(entry), below, true),
            None => match self.fetch(value_key, below, usage).await {
                Some((got, below)) => (got, below, false),
                None => {
                    let why = if usage.events.last() == Some(&CacheEvent::Error) {
                        "redis failed"
                    } else {
                        "breaker open"
                    };
                    usage.push(CacheEvent::Bypass, Duration::ZERO);
                    return (Lookup::Bypass, Some(why));
                }
            },
        };
        let took = started.elapsed();
        if self.epoch(epoch.shard) != Some(epoch)
            || super::retired::is_retired(epoch.n, below.as_deref())
        {
            // A writer abandoned this epoch while we looked, or a mover retired it (the
            // slots changed hands): the entry may be stale.
            usage.push(CacheEvent::Bypass, took);
            return (Lookup::Bypass, Some("epoch changed"));
        }
        match got {
            Some(entry) if entry.seen_at() >= at_least => {
                usage.events.push(CacheEvent::Hit);
                if from_memory {
                    if let Some(memory) = &self.memory {
                        memory.tier.hit();
                    }
                }
                let found = match entry {
                    Entry::Record(record) => Lookup::Hit(record),
                    Entry::Tombstone { .. } => Lookup::Gone,
                };
                (found, None)
            }
            // Missing, unreadable, or older than the read asks for.
            _ => {
                usage.events.push(CacheEvent::Miss);
                (Lookup::Miss(epoch), None)
            }
        }
    }

    /// The entry and the shard's retired-epoch marker from the memory tier, if it holds
    /// both and its tracking connection vouches for it (see `tracking`).
    fn in_memory(&self, value_key: &str, below: &str) -> Option<(Entry, Option<String>)> {
        let memory = self.memory.as_ref()?;
        if !memory.tracking.vouches() {
            return None;
        }
        let Some(Held::Marker(below)) = memory.tier.get(below) else {
            return None;
        };
        let Some(Held::Entry(entry)) = memory.tier.get(value_key) else {
            return None;
        };
        Some((entry, below))
    }

    /// The entry (None: missing or unreadable) and the shard's retired-epoch marker from
    /// Redis, in one round trip: on the tracking connection when the memory tier is on
    /// and tracking, holding what it read there; else on this thread's connection.
    /// None when Redis did not answer.
    async fn fetch(
        &self,
        value_key: String,
        below: String,
        usage: &mut CacheUsage,
    ) -> Option<(Option<Entry>, Option<String>)> {
        let tracked = self
            .memory
            .as_ref()
            .and_then(|m| Some((m, m.tracking.conn()?)));
        let Some((memory, Tracked { conn, id })) = tracked else {
            let got: (Option<String>, Option<String>) = self
                .call(usage, move |mut conn| async move {
                    redis::cmd("MGET")
                        .arg(&value_key)
                        .arg(&below)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            return Some((got.0.and_then(|v| Entry::parse(v).ok()), got.1));
        };
        if self.breaker.is_open() {
            return None;
        }
        let tickets = (memory.tier.ticket(&value_key), memory.tier.ticket(&below));
        let sent = Instant::now();
        let mut conn = conn;
        let mget = redis::cmd("MGET").arg(&value_key).arg(&below).to_owned();
        let got = tokio::time::timeout(self.timeout, async move {
            mget.query_async::<(Option<String>, Option<String>)>(&mut conn)
                .await
        })
        .await;
        let mut still_tracking = false;
        let got = match got {
            Ok(Ok(got)) => {
                still_tracking = memory.tracking.replied(id, sent);
                Ok(got)
            }
            // The library's own response timeout (the same `timeout_ms`) is a slow
            // reply, not a broken connection: the tier keeps what it holds.
            Ok(Err(e)) if e.is_timeout() => {
                memory.tracking.timed_out(id);
                Err("timed out".to_owned())
            }
            Ok(Err(e)) => {
                memory.tracking.failed(id);
                Err(e.to_string())
            }
            Err(_) => {
                memory.tracking.timed_out(id);
                Err("timed out".to_owned())
            }
        };
        let (value, marker) = self.counted(usage, sent.elapsed(), got)?;
        let entry = value.and_then(|v| Entry::parse(v).ok());
        if !still_tracking {
            return Some((entry, marker));
        }
        memory
            .tier
            .hold(&below, Held::Marker(marker.clone()), tickets.1);
        if let Some(entry) = &entry {
            memory
                .tier
                .hold(&value_key, Held::Entry(entry.clone()), tickets.0);
        }
        Some((entry, marker))
    }

    /// Counts one Redis call's outcome for the breaker and the request.
    fn counted<T>(
        &self,
        usage: &mut CacheUsage,
        took: Duration,
        got: Result<T, String>,
    ) -> Option<T> {
        match got {
            Ok(v) => {
                self.breaker.success();
                usage.redis_time = Some(usage.redis_time.unwrap_or_default() + took);
                Some(v)
            }
            Err(why) => {
                self.failed(usage, took, &why);
                None
            }
        }
    }

    /// A reader installs what it read (refused by Redis if a newer version is known).
    /// `seen_at`: a WAL position the server had applied before the read began (0 when
    /// not known). `observed_after(t)`: the shard primary's WAL position if one was
    /// observed after `t` (see `fence`).
    pub async fn install_read(
        &self,
        epoch: Epoch,
        shard: ShardId,
        record: &Record,
        seen_at: Lsn,
        observed_after: impl FnOnce(std::time::Instant) -> Option<Lsn>,
        usage: &mut CacheUsage,
    ) {
        if !self.fences.allows(shard, seen_at, observed_after) {
            return;
        }
        let record_id = record_hash(&record.table_name, &record.shard_key, &record.id);
        if !self.local.allows(record_id, record.version) {
            return;
        }
        let Ok(json) = serde_json::to_string(record) else {
            return;
        };
        let keys = self.keys(epoch, &record.table_name, &record.shard_key, &record.id);
        let value = format!("{}|{json}", seen_at.0);
        self.run_script(usage, epoch, keys, record.version, value, 'r')
            .instrument(spans::cache("cache fill", shard))
            .await;
    }

    /// Runs `install.lua` for one record of `epoch` (its value and floor keys).
    pub(super) async fn run_script(
        &self,
        usage: &mut CacheUsage,
        epoch: Epoch,
        (value_key, floor_key): (String, String),
        version: i64,
        json: String,
        mode: char,
    ) -> Option<i64> {
        let script = &self.script;
        let (ttl, floor_ttl) = (self.ttl_ms, self.floor_ttl_ms);
        let below = super::retired::retired_key(&self.prefix, epoch.shard);
        self.call(usage, move |mut conn| async move {
            script
                .key(value_key)
                .key(floor_key)
                .key(below)
                .arg(version)
                .arg(json)
                .arg(ttl)
                .arg(floor_ttl)
                .arg(mode.to_string())
                .arg(epoch.n)
                .invoke_async(&mut conn)
                .await
        })
        .await
    }
}
