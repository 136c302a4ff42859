//! The spans of the request path, for OpenTelemetry traces: plain `tracing` spans and
//! events, their fields named by OpenTelemetry's semantic conventions (`db.*`,
//! `server.*`) or ours (`shardgate.*`). The gateway's OpenTelemetry layer
//! (`tracing-opentelemetry`) exports them; this crate depends on no OpenTelemetry crate.
//!
//! All share one target, [`TARGET`], at `DEBUG`: off in a subscriber that filters at
//! `INFO` (the admin CLI; the gateway turns the target off outright when it exports no
//! traces, and keeps it out of its log lines when it does). A span that is off costs a
//! cached check and builds none of its fields.
//!
//! - [`operation`]: a record operation, with where its key was routed (slot, shard,
//!   map version): the span a request's trips nest under.
//! - [`Peer`] and [`trip`]: one trip to one server, a client span: `db.system.name`,
//!   `db.namespace` (the database and schema, `shardgate.public`), `db.operation.name`,
//!   `server.address`, `server.port`, `shardgate.shard`, `shardgate.role`, and the pid
//!   of the backend that served it (`db.postgresql.backend_pid`, as
//!   `pg_stat_activity.pid`), once a connection is had ([`served_by`]); a failed one
//!   its `error.type` and the server's SQLSTATE (`db.response.status_code`) when it
//!   refused ([`failed`]).
//! - [`wait`]: waiting for a place among a server's operations or for a connection.
//! - [`hold`]: a request held for a shard's new primary, and whether it went on.
//! - [`batch`]: a trip that carries several requests (a group commit, point reads sent
//!   together): a span of its own, a root named `batch`, linked both ways with the span of each
//!   request it carried. The links are `tracing`'s own `follows_from`, which the
//!   OpenTelemetry layer turns into span links. A batch of one is that request's own
//!   trip, under its span.
//! - [`cache`]: a trip to the Redis cache, a client span (`cache lookup`, whose outcome
//!   [`cache_outcome`] records: hit, miss, or bypass and why; `cache fill`).
//! - [`snapshot_fence`]: taking and lifting the cluster fence of a snapshot read.
//! - [`transaction`], [`decision`]: a transaction (a two-phase commit across shards,
//!   one round on one shard) and its logged decision (its prepares, commits and round
//!   are trips).
//! - Events inside them: [`retried`] (another connection, another shard, another
//!   primary), [`marked_down`] (a replica's ban), [`waiting_for_primary`] (a failover
//!   wait).
//!
//! Trips and waits are recorded only inside a span (a request's): the background work
//! (health checks, upkeep) opens no trace of its own.
//!
//! A request whose trace is not recorded (the gateway's sampler decided so before its
//! first span) runs as [`unsampled`] work, and a task it starts carries the mark
//! ([`carry`]): no span or event here is made in it. The subscriber cannot be relied
//! on for that: a span that every filtered layer refuses is still made (a registry
//! entry that no layer is told of), so the mark is checked here, before the span.

use std::future::Future;

use tracing::field::Empty;
use tracing::{Level, Span};

use crate::error::ClusterError;
use crate::routing::{Role, RoutedKey, ShardId};

/// The target of every span and event here.
pub const TARGET: &str = "shardgate::db";

/// The schema the gateway's tables are in: the migrations create them unqualified,
/// under the default `search_path`, in `public`.
pub const SCHEMA: &str = "public";

tokio::task_local! {
    /// Whether the work running is a request's whose trace is not recorded.
    static UNSAMPLED: bool;
}

/// Runs `work` as the work of a request whose trace is not recorded.
pub fn unsampled<F: Future>(work: F) -> impl Future<Output = F::Output> {
    UNSAMPLED.scope(true, work)
}

/// Whether the work running now is [`unsampled`] (in its own task, or one it started
/// with [`carry`]).
pub fn is_unsampled() -> bool {
    UNSAMPLED.try_with(|u| *u).unwrap_or(false)
}

/// `work`, for a task of its own, marked [`unsampled`] as the work starting it is.
pub fn carry<F: Future>(work: F) -> impl Future<Output = F::Output> {
    UNSAMPLED.scope(is_unsampled(), work)
}

/// Whether this module's spans are made: a subscriber records them, and the work is
/// not an [`unsampled`] request's.
pub fn enabled() -> bool {
    !is_unsampled() && tracing::enabled!(target: TARGET, Level::DEBUG)
}

/// Whether spans are recorded and a span is current (a request's work).
fn in_span() -> bool {
    enabled() && !Span::current().is_none()
}

/// The span the current work runs in, when spans are recorded (none otherwise): what
/// a batch that carries this request links with.
pub fn requester() -> Span {
    if enabled() {
        Span::current()
    } else {
        Span::none()
    }
}

/// A record operation (`write`, `read`, `list`, `delete`, `claim`) on `table`, with
/// where `key` was routed.
pub fn operation(name: &'static str, table: &str, key: &RoutedKey) -> Span {
    if is_unsampled() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "operation",
        otel.name = name,
        db.collection.name = table,
        shardgate.slot = key.slot().0,
        shardgate.shard = key.shard().0,
        shardgate.map_version = key.map_version().0,
    )
}

/// A server as its trips name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub shard: ShardId,
    pub role: Role,
    /// The schema, qualified by the database (`db.namespace`, as OpenTelemetry's
    /// PostgreSQL conventions have it: `shardgate.public`).
    pub namespace: String,
    /// The host, without the port (`server.address`).
    pub address: String,
    pub port: u16,
}

impl Peer {
    /// `addr` is `host:port` (an IPv6 host in brackets); without a port, 5432.
    pub fn new(shard: ShardId, role: Role, addr: &str, database: &str) -> Self {
        let (host, port) = match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                (host, port.parse().unwrap_or(5432))
            }
            _ => (addr, 5432),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Self {
            shard,
            role,
            namespace: format!("{database}.{SCHEMA}"),
            address: host.to_owned(),
            port,
        }
    }
}

/// A database client span to `peer`; `$parent` as `tracing`'s `parent:` takes it.
macro_rules! db_span {
    ($peer:expr, $operation:expr, $size:expr $(, parent: $parent:expr)?) => {
        db_span!($peer, $operation, $size $(, parent: $parent)?, name: "trip")
    };
    ($peer:expr, $operation:expr, $size:expr $(, parent: $parent:expr)?, name: $name:literal) => {
        tracing::debug_span!(
            target: TARGET,
            $(parent: $parent,)?
            $name,
            otel.name = $operation,
            otel.kind = "client",
            otel.status_code = Empty,
            error.type = Empty,
            db.response.status_code = Empty,
            db.system.name = "postgresql",
            db.namespace = $peer.namespace.as_str(),
            db.operation.name = $operation,
            db.operation.batch.size = $size,
            server.address = $peer.address.as_str(),
            server.port = $peer.port,
            shardgate.shard = $peer.shard.0,
            shardgate.role = $peer.role.as_str(),
            db.postgresql.backend_pid = Empty,
        )
    };
}

/// One trip to `peer` (`operation`: what it does, e.g. `find`, `PREPARE TRANSACTION`),
/// under the current span; none outside one.
pub fn trip(peer: &Peer, operation: &'static str) -> Span {
    if !in_span() {
        return Span::none();
    }
    db_span!(peer, operation, Empty)
}

/// One trip to `peer` that carries the requests whose spans are `requesters`: with
/// one, that request's trip, under its span; with several, a root span of its own,
/// linked with each request's span both ways.
pub fn batch<'a, I>(peer: &Peer, operation: &'static str, requesters: I) -> Span
where
    I: IntoIterator<Item = &'a Span>,
    I::IntoIter: Clone,
{
    if !enabled() {
        return Span::none();
    }
    let requesters = requesters.into_iter().filter(|r| !r.is_none());
    let mut count = requesters.clone();
    match (count.next(), count.next()) {
        (None, _) => Span::none(),
        (Some(one), None) => db_span!(peer, operation, Empty, parent: one),
        (Some(_), Some(_)) => {
            let size = requesters.clone().count();
            // Named `batch` (the gateway exports a batch's root whatever request's work
            // made it); `otel.name` names it in a trace.
            let span = db_span!(peer, operation, size, parent: None::<tracing::Id>, name: "batch");
            // Every link to the requests first: OpenTelemetry's sampler decides the root
            // when it starts, which a link back starts, and a root that carried a sampled
            // request is sampled with it (`telemetry::sampler`).
            for requester in requesters.clone() {
                span.follows_from(requester);
            }
            for requester in requesters {
                requester.follows_from(&span);
            }
            span
        }
    }
}

/// The trip `span` got its connection: the backend serving it.
pub fn served_by(span: &Span, backend_pid: i32) {
    span.record("db.postgresql.backend_pid", backend_pid);
}

/// The trip `span` failed with `error`: its status, `error.type`, and the server's
/// SQLSTATE when it refused (`db.response.status_code`).
pub fn failed(span: &Span, error: &ClusterError) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error.error_type());
    if let Some(code) = error.sqlstate() {
        span.record("db.response.status_code", code);
    }
}

/// Waiting for `what` (`permit`: a place among the server's operations at once;
/// `connection`: a pooled connection, opened if need be), inside the current trip.
pub fn wait(what: &'static str) -> Span {
    if !in_span() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "wait",
        otel.name = match what {
            "permit" => "wait for a permit",
            _ => "wait for a connection",
        },
        shardgate.wait = what,
    )
}

/// A transaction on `shards` shards: `two-phase commit` across several, `one-shard
/// commit` on one; its id in the coordinator log is recorded once drawn
/// ([`transaction_id`]). Made on the request's task, where the exporter finds the
/// request's span to put it under, and carried by the coordinator's task of its own
/// (`cluster::txn::deadline`): a span made in that task would find none there.
pub fn transaction(shards: usize) -> Span {
    if is_unsampled() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "transaction",
        otel.name = if shards > 1 { "two-phase commit" } else { "one-shard commit" },
        shardgate.txid = Empty,
        shardgate.shards = shards,
    )
}

/// The current transaction's id in the coordinator log (see [`transaction`]).
pub fn transaction_id(txid: &str) {
    if enabled() {
        Span::current().record("shardgate.txid", txid);
    }
}

/// Writing a transaction's decision to the coordinator log.
pub fn decision(txid: &str, decision: &'static str) -> Span {
    if is_unsampled() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "decision",
        otel.name = "log decision",
        shardgate.txid = txid,
        shardgate.decision = decision,
    )
}

/// A trip to the Redis cache for `shard`'s records: `cache lookup` (its outcome is
/// recorded by [`cache_outcome`]), `cache fill` (a reader installing what it read), or
/// a writer's `cache install` or `cache forget` (recorded by [`cache_written`]), inside
/// the current operation.
pub fn cache(name: &'static str, shard: ShardId) -> Span {
    if !in_span() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "cache",
        otel.name = name,
        otel.kind = "client",
        db.system.name = "redis",
        shardgate.shard = shard.0,
        shardgate.cache.hit = Empty,
        shardgate.cache.outcome = Empty,
        shardgate.cache.bypass_reason = Empty,
    )
}

/// A writer's trip to the Redis cache for `records` records across shards (a bulk
/// write's `cache install`), inside the current operation; its outcome is recorded by
/// [`cache_written`].
pub fn cache_batch(name: &'static str, records: usize) -> Span {
    if !in_span() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "cache",
        otel.name = name,
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.batch.size = records,
        shardgate.cache.outcome = Empty,
    )
}

/// What a writer's cache trip (`cache install`, `cache forget`) did: `installed`,
/// `forgotten`, `epoch raised` (Redis could not be told: the shard's cache epoch was
/// raised instead) or `not told` (neither could be: the write is not acknowledged).
pub fn cache_written(span: &Span, outcome: &'static str) {
    span.record("shardgate.cache.outcome", outcome);
}

/// What a cache lookup found: `hit`, `miss` or `bypass` (with why: `breaker open`,
/// `redis failed`, `epoch changed`).
pub fn cache_outcome(span: &Span, outcome: &'static str, bypass_reason: Option<&'static str>) {
    span.record("shardgate.cache.hit", outcome == "hit");
    span.record("shardgate.cache.outcome", outcome);
    if let Some(reason) = bypass_reason {
        span.record("shardgate.cache.bypass_reason", reason);
    }
}

/// Taking (`take snapshot fence`) or lifting (`release snapshot fence`) the cluster
/// fence a snapshot read's cut is taken under, inside the current operation.
pub fn snapshot_fence(name: &'static str) -> Span {
    if !in_span() {
        return Span::none();
    }
    tracing::debug_span!(target: TARGET, "snapshot fence", otel.name = name)
}

/// An event: the work is tried again (`how`: on another connection, on the key's new
/// shard, on the shard's new primary), after `why`.
pub fn retried(how: &'static str, why: &dyn std::fmt::Display) {
    if is_unsampled() {
        return;
    }
    tracing::event!(target: TARGET, Level::DEBUG, shardgate.retry = how, shardgate.reason = %why, "retry");
}

/// An event: `peer` marked down after a failure; a replica is banned from reads for
/// `ban_ms`.
pub fn marked_down(peer: &Peer, reason: &str, ban_ms: u64) {
    if is_unsampled() {
        return;
    }
    match peer.role {
        Role::Replica => tracing::event!(
            target: TARGET,
            Level::DEBUG,
            server.address = peer.address.as_str(),
            server.port = peer.port,
            shardgate.reason = reason,
            shardgate.ban_ms = ban_ms,
            "replica banned"
        ),
        Role::Primary => tracing::event!(
            target: TARGET,
            Level::DEBUG,
            server.address = peer.address.as_str(),
            server.port = peer.port,
            shardgate.reason = reason,
            "primary marked down"
        ),
    }
}

/// A request held for `shard`'s new primary (`cluster::new_primary`), up to `bound_ms`:
/// from its first failure until it went on (`shardgate.released`: true) or was answered
/// at the bound (false).
pub fn hold(shard: ShardId, bound_ms: u64) -> Span {
    if !in_span() {
        return Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "hold",
        otel.name = "hold for a new primary",
        shardgate.shard = shard.0,
        shardgate.hold_bound_ms = bound_ms,
        shardgate.released = Empty,
    )
}

/// An event: a write waits up to `bound_ms` for `shard`'s primary to take it again (a
/// failover).
pub fn waiting_for_primary(shard: ShardId, bound_ms: u64, why: &dyn std::fmt::Display) {
    if is_unsampled() {
        return;
    }
    tracing::event!(
        target: TARGET,
        Level::DEBUG,
        shardgate.shard = shard.0,
        shardgate.wait_bound_ms = bound_ms,
        shardgate.reason = %why,
        "waiting for a primary"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_its_host_and_port() {
        let peer = Peer::new(ShardId(2), Role::Replica, "127.0.0.1:25533", "shardgate");
        assert_eq!(peer.address, "127.0.0.1");
        assert_eq!(peer.port, 25533);
        assert_eq!(peer.namespace, "shardgate.public");
        let v6 = Peer::new(ShardId(0), Role::Primary, "[::1]:6432", "db");
        assert_eq!((v6.address.as_str(), v6.port), ("::1", 6432));
        let bare = Peer::new(ShardId(0), Role::Primary, "db.internal", "db");
        assert_eq!((bare.address.as_str(), bare.port), ("db.internal", 5432));
    }

    use std::sync::{Arc, Mutex};
    use tracing::span::{Attributes, Id};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::{EnvFilter, Layer};

    /// Tracing caches, process-wide, whether a callsite is enabled: two of these tests
    /// with different filters at once could each see the other's answer. One at a time.
    static ONE_SUBSCRIBER: Mutex<()> = Mutex::new(());

    /// Runs `f` under `subscriber` alone, the callsites asked afresh.
    fn under<S: Subscriber + Send + Sync + 'static>(subscriber: S, f: impl FnOnce()) {
        let _alone = ONE_SUBSCRIBER.lock().unwrap_or_else(|e| e.into_inner());
        tracing::subscriber::with_default(subscriber, || {
            tracing::callsite::rebuild_interest_cache();
            f()
        });
    }

    /// What a subscriber saw: spans opened (name, explicit root) and `follows_from`
    /// links (from, to), by span name.
    #[derive(Default, Clone)]
    struct Seen {
        opened: Arc<Mutex<Vec<(String, bool)>>>,
        links: Arc<Mutex<Vec<(String, String)>>>,
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let name = attrs.metadata().name().to_owned();
            self.opened.lock().unwrap().push((name, attrs.is_root()));
        }

        fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
            let name = |id| ctx.span(id).map(|s| s.name().to_owned()).unwrap();
            let link = (name(span), name(follows));
            self.links.lock().unwrap().push(link);
        }
    }

    fn peer() -> Peer {
        Peer::new(ShardId(0), Role::Primary, "127.0.0.1:5432", "db")
    }

    #[test]
    fn a_batch_of_several_is_a_root_linked_both_ways_and_a_batch_of_one_a_child() {
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry().with(seen.clone());
        under(subscriber, || {
            let first = tracing::info_span!("first request");
            let second = tracing::info_span!("second request");
            let group = batch(&peer(), "group commit", [&first, &second]);
            assert!(!group.is_disabled());
            let alone = batch(&peer(), "group commit", [&first]);
            assert!(!alone.is_disabled());
        });
        let opened = seen.opened.lock().unwrap().clone();
        assert_eq!(
            opened
                .iter()
                .filter(|(n, _)| n == "trip" || n == "batch")
                .collect::<Vec<_>>(),
            [&("batch".to_owned(), true), &("trip".to_owned(), false)],
            "the group a root named batch, the lone write's trip not"
        );
        let mut links = seen.links.lock().unwrap().clone();
        links.sort();
        let link = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            links,
            [
                link("batch", "first request"),
                link("batch", "second request"),
                link("first request", "batch"),
                link("second request", "batch"),
            ]
        );
    }

    #[test]
    fn off_under_an_info_filter_and_outside_a_request() {
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(seen.clone())
            .with(EnvFilter::new("info"));
        under(subscriber, || {
            let request = tracing::info_span!("request");
            let _in = request.enter();
            assert!(trip(&peer(), "find").is_disabled());
            assert!(requester().is_none());
        });
        let debug = tracing_subscriber::registry()
            .with(seen.clone())
            .with(EnvFilter::new("debug"));
        under(debug, || {
            // No span current (background work): no trip, no wait.
            assert!(trip(&peer(), "find").is_none());
            assert!(wait("connection").is_none());
            let request = tracing::info_span!("request");
            let _in = request.enter();
            assert!(!trip(&peer(), "find").is_disabled());
            assert!(!requester().is_none());
        });
    }

    #[test]
    fn nothing_is_recorded_without_a_subscriber_or_outside_a_span() {
        // No subscriber: every span is off, and so never built.
        let peer = Peer::new(ShardId(0), Role::Primary, "127.0.0.1:5432", "db");
        assert!(trip(&peer, "find").is_disabled());
        assert!(requester().is_none());
        assert!(batch(&peer, "group commit", &[Span::none(), Span::none()]).is_none());
    }
}
