//! One type per configuration section, with the defaults a missing field takes.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use crate::routing::settings::{
    RangeSettings, RoutingSettings, Strategy, MAX_VNODES, MAX_WEIGHT,
};

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

    /// The `[replication]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "check_interval_ms": self.check_interval_ms,
            "check_timeout_ms": self.check_timeout_ms,
            "ban_ms": self.ban_ms,
            "max_lag_bytes": self.max_lag_bytes,
            "max_lag_ms": self.max_lag_ms,
            "ryw_wait_ms": self.ryw_wait_ms,
            "durability_timeout_ms": self.durability_timeout_ms,
        })
    }
}

/// How to reach and use the PostgreSQL servers.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// The application role the gateway and the admin CLI sign in as, on the shards and
    /// the metadata server (not a superuser).
    pub user: String,
    /// `user`'s password; never printed (`***`). `./setup.sh` generates it and exports
    /// it as `SHARDGATE__DATABASE__PASSWORD`.
    pub password: SecretString,
    /// The database that holds the records, on every shard server.
    pub dbname: String,
    /// A server that does not answer a connection within this many ms is reported down
    /// (503 naming the shard).
    pub connect_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` on every connection, ms; a statement past it
    /// answers 504.
    pub statement_timeout_ms: u64,
    /// How long a part of a transaction across shards waits for a lock before it fails
    /// (SQLSTATE 55P03, answered 409) and the transaction is rolled back: two such
    /// transactions that wait for each other on different shards are a deadlock no one
    /// server can detect. 0: no bound but `statement_timeout_ms`.
    #[serde(default = "default_txn_lock_timeout_ms")]
    pub txn_lock_timeout_ms: u64,
    /// Most operations on one server at once, across threads, and about the most
    /// connections one gateway opens to it (each HTTP worker thread keeps its share).
    pub pool_max_size: usize,
    /// How long a request waits for a free connection to a server, ms, before 503 with
    /// `Retry-After`.
    pub pool_wait_timeout_ms: u64,
    /// Point reads to one server that arrive together leave together: pipelined on one
    /// connection, one send and one receive, each with its own answer. Opportunistic:
    /// a lone read goes at once. Off: each read takes a connection of its own.
    #[serde(default = "batch_point_reads_default")]
    pub batch_point_reads: bool,
    /// Group commit: single writes and deletes to one primary that arrive together
    /// commit together, in one transaction (one commit, one fsync), each write with its
    /// own statement, answer and refusal. Opportunistic: a lone write goes at once. Off:
    /// each write is a group of one, committed at once in a transaction of its own.
    #[serde(default = "batch_writes_default")]
    pub batch_writes: bool,
    /// Threads that each keep their own pool to every server: the gateway sets its HTTP
    /// worker count here (it is not read from the file). Each thread's pool holds at
    /// most `ceil(pool_max_size / pool_threads)` connections, so a server sees about
    /// `pool_max_size` connections per gateway whatever the host's core count (a
    /// 16-core host would otherwise open 16 × 16 per server).
    #[serde(skip, default = "one_thread")]
    pub pool_threads: usize,
    /// Sign in with a cleartext password or an MD5 hash when a server asks for one.
    /// Off by default: the gateway's own client then signs in only with SCRAM-SHA-256
    /// (whose proof of the server it checks) or no password, and refuses the others
    /// with an error naming this setting.
    #[serde(default)]
    pub allow_insecure_auth: bool,
    /// TLS from the gateway's client to every server: `disable` (plain TCP), `require`
    /// (encrypted, the certificate not checked) or `verify-full` (the certificate must
    /// chain to `ssl_root_cert` and name the server's configured host).
    #[serde(default)]
    pub sslmode: SslMode,
    /// PEM file of the certificate authorities a server's certificate must chain to
    /// (`sslmode = "verify-full"`); read at start-up.
    #[serde(default)]
    pub ssl_root_cert: Option<std::path::PathBuf>,
}

/// Whether, and how safely, the gateway's own client speaks TLS to PostgreSQL (as
/// libpq's `sslmode`, without its `prefer`/`allow`, which a man in the middle can
/// turn into plain text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP (loopback, or a network you trust).
    #[default]
    Disable,
    /// TLS, refusing a server that will not speak it; the certificate is not checked,
    /// so this stops eavesdroppers but not a man in the middle.
    Require,
    /// TLS with the certificate checked: it chains to `ssl_root_cert`, and names the
    /// host the server is configured at (DNS name or IP address).
    VerifyFull,
}

fn one_thread() -> usize {
    1
}

fn batch_point_reads_default() -> bool {
    true
}

fn batch_writes_default() -> bool {
    true
}

fn default_txn_lock_timeout_ms() -> u64 {
    2000
}

impl DatabaseSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
    /// The most connections one thread's pool keeps to a server.
    pub fn pool_per_thread(&self) -> usize {
        self.pool_max_size.div_ceil(self.pool_threads.max(1)).max(1)
    }
    pub fn pool_wait_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_wait_timeout_ms)
    }

    /// The `[database]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        use secrecy::ExposeSecret;
        serde_json::json!({
            "user": self.user,
            "password": if self.password.expose_secret().is_empty() { "" } else { "***" },
            "dbname": self.dbname,
            "connect_timeout_ms": self.connect_timeout_ms,
            "statement_timeout_ms": self.statement_timeout_ms,
            "txn_lock_timeout_ms": self.txn_lock_timeout_ms,
            "pool_max_size": self.pool_max_size,
            "pool_wait_timeout_ms": self.pool_wait_timeout_ms,
            "batch_point_reads": self.batch_point_reads,
            "batch_writes": self.batch_writes,
            "allow_insecure_auth": self.allow_insecure_auth,
            "sslmode": match self.sslmode {
                SslMode::Disable => "disable",
                SslMode::Require => "require",
                SslMode::VerifyFull => "verify-full",
            },
            "ssl_root_cert": self.ssl_root_cert,
        })
    }
}

/// The logical tables clients may use.
#[derive(Debug, Clone, Deserialize)]
pub struct TableSettings {
    /// Table names (lower-case letters, digits and `_`); a request naming any other
    /// gets 422 listing these.
    pub allowed: Vec<String>,
}

impl TableSettings {
    /// The `[tables]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "allowed": self.allowed })
    }
}

/// One shard: exactly one primary and any number of replicas, as `host:port`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardSettings {
    /// The shard's primary, `host:port` (credentials are `[database]`'s).
    pub primary: String,
    /// The shard's replicas, `host:port` each: they take eventual reads and reads that
    /// carry a write's token.
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
    /// How a failover is followed: `"servers"`, each listed server asked its role and
    /// the map moved to the promoted one; `"address"`, `primary` is a fixed address that
    /// always leads to the primary (CloudNativePG's `-rw` service, HAProxy before
    /// Patroni, a managed endpoint) and `replicas` at most one address spread over the
    /// standbys (`-ro`); the HA manager moves the address, never the map. Such a shard
    /// is refused a switchover and its servers are left alone by the failover watcher;
    /// the gateway knows its primary by its recorded identity and writes only on
    /// connections that reached it (see the failover chapter).
    #[serde(default)]
    pub follow: ShardFollows,
}

impl ShardSettings {
    /// The `[[shards]]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "primary": self.primary,
            "replicas": self.replicas,
            "slots": self.slots,
            "balance": self.balance,
            "read_primary": self.read_primary,
            "follow": self.follow,
        })
    }
}

/// How a shard's failover is followed: through its servers' addresses, or behind one
/// fixed address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardFollows {
    /// The shard's servers are listed one by one; a promotion moves the map's primary
    /// to the promoted server.
    #[default]
    Servers,
    /// `primary` (and `replicas`) are fixed addresses an HA layer keeps pointed at the
    /// primary (and the standbys); the map's servers never change.
    Address,
}

impl ShardFollows {
    /// The name the configuration and the map's `map_shards.follow` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardFollows::Servers => "servers",
            ShardFollows::Address => "address",
        }
    }

    /// The value `map_shards.follow` holds; None for an unknown one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "servers" => Some(ShardFollows::Servers),
            "address" => Some(ShardFollows::Address),
            _ => None,
        }
    }
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
#[derive(Clone, Deserialize)]
pub struct CacheSettings {
    /// Serve point reads from Redis; a write updates its entry before it is
    /// acknowledged.
    pub enabled: bool,
    /// Redis's URL; with a password `redis://:PASSWORD@host:port` (the password is
    /// never printed).
    pub url: String,
    /// Prefix of every key the cluster keeps in Redis: every gateway of a cluster
    /// shares it.
    pub prefix: String,
    /// How long an entry lives, seconds. Not a staleness bound: writes through any
    /// gateway update or invalidate entries (see the cache chapter).
    pub ttl_secs: u64,
    /// Every Redis call is bounded by this; past it the request goes to the shard.
    pub timeout_ms: u64,
    /// Consecutive Redis failures that open the breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker bypasses Redis.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Entries each gateway also holds in its own memory, kept exact by Redis's
    /// invalidations (`CLIENT TRACKING`); 0 turns the memory tier off. The default holds
    /// a hot set of ten thousand records, a few megabytes for records of a few hundred
    /// bytes (at most 8 KiB each are held): see the cache chapter.
    #[serde(default = "default_memory_entries")]
    pub memory_entries: usize,
}

impl std::fmt::Debug for CacheSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheSettings")
            .field("enabled", &self.enabled)
            .field("url", &crate::redact::redact(&self.url))
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .field("timeout_ms", &self.timeout_ms)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_open_ms", &self.breaker_open_ms)
            .field("memory_entries", &self.memory_entries)
            .finish()
    }
}

fn default_breaker_failures() -> u32 {
    3
}

fn default_breaker_open_ms() -> u64 {
    1000
}

fn default_memory_entries() -> usize {
    10_000
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
            memory_entries: default_memory_entries(),
        }
    }
}

impl CacheSettings {
    /// The `[cache]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "enabled": self.enabled,
            "url": crate::redact::redact(&self.url),
            "prefix": self.prefix,
            "ttl_secs": self.ttl_secs,
            "timeout_ms": self.timeout_ms,
            "breaker_failures": self.breaker_failures,
            "breaker_open_ms": self.breaker_open_ms,
            "memory_entries": self.memory_entries,
        })
    }
}

/// Slot moves as operators are told of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MovesSettings {
    /// A move stopped this long (no mover holds it, its record unchanged), neither
    /// resumed nor aborted, is shown as stuck by `/api/health`, `moves status` and the
    /// dashboard. One stopped at the switch is shown at once (it may leave two owners).
    pub stuck_after_secs: u64,
}

impl Default for MovesSettings {
    fn default() -> Self {
        Self {
            stuck_after_secs: 300,
        }
    }
}

impl MovesSettings {
    pub fn stuck_after(&self) -> Duration {
        Duration::from_secs(self.stuck_after_secs)
    }

    /// The `[moves]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "stuck_after_secs": self.stuck_after_secs })
    }
}

/// Change streams (`GET /api/changes`): how long each shard keeps its change log and how
/// long a reader may be kept waiting.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ChangesSettings {
    /// Changes are kept at least this long on their shard; a cursor older than what is
    /// kept answers 410 Gone. Pruned by the gateways' sweep (`server.idempotency_sweep_secs`).
    pub retention_secs: u64,
    /// The longest a page of changes waits for a change (`wait`, in milliseconds) when
    /// there is none yet.
    pub max_wait_ms: u64,
    /// The most changes a page holds (`limit`); a Server-Sent Events stream reads pages
    /// of this size, so a slow consumer holds at most this many in the gateway.
    pub max_page: usize,
}

impl Default for ChangesSettings {
    fn default() -> Self {
        Self {
            retention_secs: 86_400,
            max_wait_ms: 30_000,
            max_page: 1_000,
        }
    }
}

impl ChangesSettings {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_secs)
    }

    /// The `[changes]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "retention_secs": self.retention_secs,
            "max_wait_ms": self.max_wait_ms,
            "max_page": self.max_page,
        })
    }
}

/// A shard losing its primary: how gateways notice the new one and what requests do
/// meanwhile. The promotion itself is the HA manager's (pg_auto_failover or Patroni, or
/// an operator's `pg_ctl promote`); gateways only follow it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FailoverSettings {
    /// Whether each gateway watches its shards' servers' roles and records a promotion
    /// in the map (the first gateway to see it does; the others follow the map).
    pub watch: bool,
    /// How often the servers' roles are read (`pg_is_in_recovery()`).
    pub check_ms: u64,
    /// How long a write (or strong read) whose primary is down or read-only waits for
    /// a new primary before answering 503 with `Retry-After`. 0: answer at once (no HA
    /// manager runs the shards, so no promotion is coming). `HA=1 ./setup.sh up` writes
    /// 10000 into `.local/shardgate.toml`.
    pub write_wait_ms: u64,
    /// How long requests wait for a shard whose primary is being handed over (it
    /// answered read-only: drained for a switchover, demoted, or promoted and not yet
    /// writable), from the last read-only answer, whatever `write_wait_ms` says: a
    /// planned switchover then costs clients a pause, not errors. 0: no such wait.
    pub hold_ms: u64,
    /// How many requests a gateway holds at once for shards being handed over or
    /// without a primary; past it a request is answered at once (503).
    pub hold_max_requests: u64,
    /// Every single write and delete sent without an `Idempotency-Key` is given one of
    /// the gateway's own (kept 5 minutes), so that one whose primary died with it on
    /// the wire is sent again on the new primary exactly as a keyed one is, and
    /// answered once, never "may have committed"; it waits for that primary as a write
    /// without a key does (`write_wait_ms`, or a handover's `hold_ms`). Costs each such
    /// write the key's record (a row written with it). false: such a write is never
    /// sent again once sent, and answers `503 may-have-committed` when its primary is
    /// lost under it.
    pub key_every_write: bool,
    /// The HA manager's monitor, for planned switchovers: a PostgreSQL URL of
    /// pg_auto_failover's monitor database, as a role that only reads its state
    /// (`postgres://shardgate_monitor_reader@HOST:PORT/pg_auto_failover`: a gateway's).
    /// Each shard N is its formation `shardN`. None: no HA manager runs the shards, and
    /// `shard-admin switchover` refuses.
    pub ha_monitor: Option<String>,
    /// The HA manager's monitor as a role that may promote (pg_auto_failover's
    /// `autoctl_node`), for `shard-admin switchover` alone: a gateway never holds it.
    /// `ha_monitor` is then a role that only reads the monitor's state. None: the
    /// switchover asks `ha_monitor`.
    pub ha_monitor_admin: Option<SecretString>,
    /// The role a switchover drains and lifts a primary as (it may `ALTER SYSTEM` the
    /// one parameter `default_transaction_read_only`, reload the configuration, and see
    /// every session): an administrator's, never a gateway's (`./setup.sh up` makes
    /// `shardgate_admin`). None: the application role (`database.user`).
    pub admin_user: Option<String>,
    /// `admin_user`'s password.
    pub admin_password: Option<SecretString>,
    /// A switchover target lagging more than this many bytes behind the primary is
    /// refused.
    pub switchover_max_lag_bytes: u64,
    /// How long a switchover waits for writes in flight to finish on the old primary
    /// (once it answers new ones read-only), and for the target to replay them.
    pub drain_ms: u64,
    /// How long a switchover waits for the HA manager to promote the target.
    pub switchover_timeout_ms: u64,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            watch: true,
            check_ms: 500,
            write_wait_ms: 0,
            hold_ms: 15_000,
            hold_max_requests: 10_000,
            key_every_write: true,
            ha_monitor: None,
            ha_monitor_admin: None,
            admin_user: None,
            admin_password: None,
            switchover_max_lag_bytes: 16 * 1024 * 1024,
            drain_ms: 3000,
            switchover_timeout_ms: 60_000,
        }
    }
}

impl FailoverSettings {
    pub fn check_every(&self) -> Duration {
        Duration::from_millis(self.check_ms.clamp(50, 60_000))
    }

    pub fn write_wait(&self) -> Duration {
        Duration::from_millis(self.write_wait_ms.min(120_000))
    }

    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms.min(120_000))
    }

    pub fn drain(&self) -> Duration {
        Duration::from_millis(self.drain_ms.clamp(100, 60_000))
    }

    pub fn switchover_timeout(&self) -> Duration {
        Duration::from_millis(self.switchover_timeout_ms.clamp(1000, 600_000))
    }

    /// The monitor's URL as a role that may promote (`ha_monitor_admin`), else
    /// `ha_monitor`; None without an HA manager.
    pub fn promoting_monitor(&self) -> Option<&str> {
        use secrecy::ExposeSecret;
        self.ha_monitor_admin
            .as_ref()
            .map(|u| u.expose_secret())
            .or(self.ha_monitor.as_deref())
    }

    /// `database` as the switchover's role (`admin_user`), or as it is when none is set.
    pub fn as_admin(&self, database: &DatabaseSettings) -> DatabaseSettings {
        let mut db = database.clone();
        if let Some(user) = &self.admin_user {
            db.user = user.clone();
            db.password = self
                .admin_password
                .clone()
                .unwrap_or_else(|| SecretString::from(""));
        }
        db
    }

    /// The `[failover]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        let secret = |s: &Option<SecretString>| s.as_ref().map(|_| "***");
        serde_json::json!({
            "watch": self.watch,
            "check_ms": self.check_ms,
            "write_wait_ms": self.write_wait_ms,
            "hold_ms": self.hold_ms,
            "hold_max_requests": self.hold_max_requests,
            "key_every_write": self.key_every_write,
            "ha_monitor": self.ha_monitor.as_deref().map(crate::redact::redact),
            "ha_monitor_admin": secret(&self.ha_monitor_admin),
            "admin_user": self.admin_user,
            "admin_password": secret(&self.admin_password),
            "switchover_max_lag_bytes": self.switchover_max_lag_bytes,
            "drain_ms": self.drain_ms,
            "switchover_timeout_ms": self.switchover_timeout_ms,
        })
    }
}

/// How `shard-admin backup` reaches pgBackRest (the engine; Shardgate writes no backup
/// code of its own): the program, its configuration file (one stanza per server:
/// `shardN` for shard N's primary, `meta` for the metadata server) and the OS user it runs
/// as. The defaults match `./setup.sh up`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BackupSettings {
    /// The pgbackrest program: a name looked up on the PATH, or a path.
    pub program: String,
    /// pgBackRest's configuration file; a relative path is taken from the working
    /// directory (the repository root, where `./setup.sh` writes it).
    pub pgbackrest_config: String,
    /// The OS user pgbackrest runs as when the command runs as root (the servers' user,
    /// which owns their data directories and the repository). Ignored when not root.
    pub os_user: String,
    /// How long the backup waits for the WAL holding a restore point to be archived.
    pub archive_wait_ms: u64,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            program: "pgbackrest".into(),
            pgbackrest_config: ".local/cluster/pgbackrest/pgbackrest.conf".into(),
            os_user: "postgres".into(),
            archive_wait_ms: 60_000,
        }
    }
}

impl BackupSettings {
    pub fn archive_wait(&self) -> Duration {
        Duration::from_millis(self.archive_wait_ms.clamp(1000, 600_000))
    }

    /// The `[backup]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "program": self.program,
            "pgbackrest_config": self.pgbackrest_config,
            "os_user": self.os_user,
            "archive_wait_ms": self.archive_wait_ms,
        })
    }
}

/// The metadata PostgreSQL: the shard map, its history and the live gateways. The
/// gateway's config only says how to reach it; the map itself lives there (seeded once
/// from this file by `shard-admin init`). Credentials are `[database]`'s.
#[derive(Debug, Clone, Deserialize)]
pub struct MetadataSettings {
    /// `host:port` of the metadata server.
    pub address: String,
    /// The metadata database's name on that server.
    pub dbname: String,
    /// A poll for a new map version, in case a notification was missed.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// How often a gateway says it is alive (address, map version, binary version).
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// A gateway silent for longer is no longer listed as live.
    #[serde(default = "default_gateway_ttl_ms")]
    pub gateway_ttl_ms: u64,
}

fn default_poll_ms() -> u64 {
    1000
}

fn default_heartbeat_ms() -> u64 {
    1000
}

fn default_gateway_ttl_ms() -> u64 {
    5000
}

impl Default for MetadataSettings {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:25430".into(),
            dbname: "shardgate_meta".into(),
            poll_ms: default_poll_ms(),
            heartbeat_ms: default_heartbeat_ms(),
            gateway_ttl_ms: default_gateway_ttl_ms(),
        }
    }
}

impl MetadataSettings {
    /// The `[metadata]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "address": self.address,
            "dbname": self.dbname,
            "poll_ms": self.poll_ms,
            "heartbeat_ms": self.heartbeat_ms,
            "gateway_ttl_ms": self.gateway_ttl_ms,
        })
    }
}
