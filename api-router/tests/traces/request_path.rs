//! The request path's spans, as a collector receives them: each request one trace under
//! the caller's span, its routing on its operation's span, each trip to a server a
//! client span with the server's real port and the pid of a live backend, and a group
//! commit as a span of its own, linked with every write it carried both ways. A
//! transaction's spans are [`super::transaction_spans`]'.

use std::collections::{HashMap, HashSet};

use diesel::sql_types::{BigInt, Integer};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use shard_manager::servers::connection_url;
use shard_manager::{ClusterSettings, Router, ShardId, ShardKey};
use test_app::wrk::Bench;

use super::receiver::{Received, Receiver};
use super::{client, counter, metrics_until, traced_gateway, traceresponse, user, ARRIVAL};

/// SPAN_KIND_CLIENT in OTLP.
const CLIENT: i32 = 3;

/// A caller's `traceparent` of its own for request `n`: (trace id, span id).
pub(super) fn caller(n: u32) -> (String, String) {
    (format!("5ea{n:029x}"), format!("ca11e4{n:010x}"))
}

pub(super) fn header((trace, span): &(String, String)) -> String {
    format!("00-{trace}-{span}-01")
}

/// Writes `user_N` under the caller's trace `parent`; returns the server span's id that
/// `traceresponse` names, checked to be of the caller's trace.
async fn traced_write(
    http: &reqwest::Client,
    bench: &Bench,
    n: u32,
    parent: &(String, String),
) -> String {
    let res = http
        .post(bench.url("/api/write"))
        .header("x-shard-key", format!("user_{n}"))
        .header("traceparent", header(parent))
        .json(&user(n))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "write: {}", res.status());
    let (trace, server_span, _) = traceresponse(&res);
    assert_eq!(trace, parent.0);
    server_span
}

/// `count` keys (`user_N`) that route to `shard`, from `from` on.
pub(super) fn keys_on(router: &Router, shard: ShardId, from: u32, count: usize) -> Vec<u32> {
    (from..)
        .filter(|n| {
            let key = ShardKey::parse(&format!("user_{n}")).unwrap();
            router.route(key).unwrap().shard() == shard
        })
        .take(count)
        .collect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Checks a trip's span: a database client span on `shard`'s primary, named by the
/// semantic conventions with real values (the primary's port; the pid of a backend the
/// gateway holds open on the test's database there).
pub(super) fn assert_trip(trip: &Received, settings: &ClusterSettings, shard: ShardId) {
    let primary = &settings.shards[shard.0 as usize].primary;
    let (host, port) = primary.rsplit_once(':').unwrap();
    let what = format!("{} {:?}", trip.span.name, trip.span.attributes);
    assert_eq!(trip.span.kind, CLIENT, "{what}");
    assert_eq!(
        trip.attribute("db.system.name").as_deref(),
        Some("postgresql"),
        "{what}"
    );
    assert_eq!(
        trip.attribute("db.namespace"),
        Some(format!("{}.public", settings.database.dbname)),
        "{what}"
    );
    assert_eq!(
        trip.attribute("db.operation.name"),
        Some(trip.span.name.clone()),
        "{what}"
    );
    assert_eq!(trip.attribute("server.address").as_deref(), Some(host));
    assert_eq!(trip.attribute("server.port").as_deref(), Some(port));
    assert_eq!(trip.attribute("shardgate.shard"), Some(shard.0.to_string()));
    assert_eq!(trip.attribute("shardgate.role").as_deref(), Some("primary"));
    let pid: i32 = trip
        .attribute("db.postgresql.backend_pid")
        .unwrap_or_else(|| panic!("no backend pid: {what}"))
        .parse()
        .unwrap();
    assert!(pid > 0, "{what}");
    let mut conn = PgConnection::establish(&connection_url(&settings.database, primary)).unwrap();
    let live = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE pid = $1 AND datname = current_database() AND application_name = 'shardgate'",
    )
    .bind::<Integer, _>(pid)
    .get_result::<Count>(&mut conn)
    .unwrap();
    assert_eq!(
        live.n, 1,
        "pid {pid} is no gateway backend on {primary}: {what}"
    );
}

/// The spans of `trace`, by name (a name may repeat: a list each).
pub(super) fn by_name<'a>(
    spans: &'a [Received],
    trace: &str,
) -> HashMap<String, Vec<&'a Received>> {
    let mut named: HashMap<String, Vec<&Received>> = HashMap::new();
    for span in spans.iter().filter(|s| s.trace_id() == trace) {
        named.entry(span.span.name.clone()).or_default().push(span);
    }
    named
}

/// The one span called `name` in `named`.
pub(super) fn one<'a>(named: &HashMap<String, Vec<&'a Received>>, name: &str) -> &'a Received {
    match named.get(name).map(Vec::as_slice) {
        Some([only]) => only,
        other => panic!(
            "{} spans named {name:?}; the trace has {:?}",
            other.map_or(0, |o| o.len()),
            named.keys().collect::<Vec<_>>()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_trip_to_a_server_is_a_span_of_its_request_and_groups_link_both_ways() {
    // Arrange
    let receiver = Receiver::start();
    let bench = traced_gateway(
        &receiver,
        &[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
            ("RUST_LOG", "warn,api_router::startup=info"),
        ],
    )
    .await;
    let settings = &bench.settings;
    let router = settings.validate().unwrap();
    let http = client();
    let shard0 = keys_on(&router, ShardId(0), 1, 1)[0];

    // Act 1: one write under the caller's trace.
    let parent = caller(1);
    let server_span = traced_write(&http, &bench, shard0, &parent).await;
    let trace = parent.0.clone();

    // Assert: server span → the write's operation span (its routing) → its trip.
    let spans = receiver
        .until(ARRIVAL, |spans| {
            let named = by_name(spans, &trace);
            [
                "POST /api/write",
                "write",
                "group commit",
                "wait for a connection",
            ]
            .iter()
            .all(|n| named.contains_key(*n))
        })
        .await;
    let named = by_name(&spans, &trace);
    let server = one(&named, "POST /api/write");
    assert_eq!(server.span_id(), server_span);
    assert_eq!(server.parent_span_id(), parent.1, "under the caller's span");
    let write = one(&named, "write");
    assert_eq!(write.parent_span_id(), server_span);
    let routed = router
        .route(ShardKey::parse(&format!("user_{shard0}")).unwrap())
        .unwrap();
    assert_eq!(
        write.attribute("shardgate.slot"),
        Some(routed.slot().0.to_string())
    );
    assert_eq!(write.attribute("shardgate.shard").as_deref(), Some("0"));
    assert_eq!(
        write.attribute("db.collection.name").as_deref(),
        Some("users")
    );
    let metrics = metrics_until(&bench, |text| counter(text, "shardgate_map_version") >= 1.0).await;
    let map_version = counter(&metrics, "shardgate_map_version");
    assert_eq!(
        write.attribute("shardgate.map_version"),
        Some((map_version as u64).to_string())
    );
    // Alone, the write's group is its own trip, under its span.
    let trip = one(&named, "group commit");
    assert_eq!(trip.parent_span_id(), write.span_id());
    assert_trip(trip, settings, ShardId(0));
    let waited = one(&named, "wait for a connection");
    assert_eq!(waited.parent_span_id(), trip.span_id());

    // Act 2: writes at once to one shard, each under a trace of its own, until some
    // commit together.
    let mut round = 0;
    let group = loop {
        round += 1;
        assert!(
            round <= 10,
            "no two writes of ten rounds committed together"
        );
        let keys = keys_on(&router, ShardId(0), 1000 * round, 32);
        let sent = futures_util::future::join_all(keys.iter().map(|n| {
            let parent = caller(1000 * round + n % 1000);
            let (http, bench) = (&http, &bench);
            async move {
                let server_span = traced_write(http, bench, *n, &parent).await;
                (parent, server_span)
            }
        }))
        .await;
        let traces: HashSet<String> = sent.iter().map(|(p, _)| p.0.clone()).collect();
        // Every write's span, and its trip: its own child, or a group's span it links to.
        let spans = receiver
            .until(ARRIVAL, |spans| {
                let writes: Vec<_> = spans
                    .iter()
                    .filter(|s| s.span.name == "write" && traces.contains(&s.trace_id()))
                    .collect();
                writes.len() == traces.len()
                    && writes.iter().all(|w| {
                        spans.iter().any(|t| {
                            t.span.name == "group commit"
                                && (t.parent_span_id() == w.span_id() || w.links_to(t))
                        })
                    })
            })
            .await;
        for (parent, server_span) in &sent {
            let named = by_name(&spans, &parent.0);
            let server = one(&named, "POST /api/write");
            assert_eq!(server.span_id(), *server_span);
            assert_eq!(server.parent_span_id(), parent.1, "under the caller's span");
            assert_eq!(one(&named, "write").parent_span_id(), *server_span);
        }
        let groups: Vec<Received> = spans
            .iter()
            .filter(|s| {
                s.span.name == "group commit"
                    && s.links().iter().any(|(trace, _)| traces.contains(trace))
            })
            .cloned()
            .collect();
        if let Some(group) = groups.into_iter().next() {
            break (group, spans);
        }
    };

    // Assert: the group is a span of its own, a trip to shard 0's primary, linked with
    // every write it carried, each of which links back to it.
    let (group, spans) = group;
    assert_eq!(group.parent_span_id(), "", "a group is a trace of its own");
    assert_trip(&group, settings, ShardId(0));
    let carried = group.links();
    assert!(carried.len() >= 2, "{carried:?}");
    assert_eq!(
        group.attribute("db.operation.batch.size"),
        Some(carried.len().to_string())
    );
    for (trace, span) in &carried {
        let write = spans
            .iter()
            .find(|s| s.trace_id() == *trace && s.span_id() == *span)
            .unwrap_or_else(|| panic!("the group links to {trace}/{span}, not received"));
        assert_eq!(write.span.name, "write");
        assert!(write.links_to(&group), "{write:?} does not link back");
        assert!(
            !spans
                .iter()
                .any(|t| t.span.name == "group commit" && t.parent_span_id() == write.span_id()),
            "a write carried by a group has no trip of its own"
        );
    }
}
