//! A transaction's spans are its request's, at the log level a gateway runs with by
//! default (`info`, under which each request also has a span for its log lines): across
//! three shards, a `two-phase commit` span under the request's server span holds the
//! prepares, the decision and the commits; on one shard, a `one-shard commit` span holds
//! its one round; with the caller's `traceparent` or in a trace of the gateway's own. A
//! transaction whose caller said "not sampled" is not recorded at all, not even as a
//! trace of its own.

use std::collections::HashSet;

use serde_json::json;
use shard_manager::{ClusterSettings, Router, ShardId};
use test_app::wrk::Bench;

use super::receiver::{Received, Receiver};
use super::request_path::{assert_trip, by_name, caller, header, keys_on, one};
use super::{client, traced_gateway, traceresponse, ARRIVAL};

/// SPAN_KIND_CLIENT in OTLP.
const CLIENT: i32 = 3;

/// One key (`user_N`) on each of the first `shards` shards, from `from` on.
fn across(router: &Router, shards: u32, from: u32) -> Vec<u32> {
    (0..shards)
        .map(|s| keys_on(router, ShardId(s), from, 1)[0])
        .collect()
}

/// A transaction upserting `txn_N` for each of `keys`, under `traceparent` when given:
/// the trace and the server span its `traceresponse` names, and its answer.
async fn transact(
    http: &reqwest::Client,
    bench: &Bench,
    keys: &[u32],
    traceparent: Option<&str>,
) -> (String, String, serde_json::Value) {
    let ops: Vec<_> = keys
        .iter()
        .map(|n| {
            json!({"op": "upsert", "table": "users", "shard_key": format!("user_{n}"),
                   "id": format!("txn_{n}"), "data": {"balance": *n}})
        })
        .collect();
    let mut req = http
        .post(bench.url("/api/transaction"))
        .json(&json!({ "operations": ops }));
    if let Some(traceparent) = traceparent {
        req = req.header("traceparent", traceparent);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (trace, server_span, _) = traceresponse(&res);
    let answer: serde_json::Value = res.json().await.unwrap();
    (trace, server_span, answer)
}

/// The spans of `trace` once its transaction across three shards has arrived.
async fn two_phase_spans(receiver: &Receiver, trace: &str) -> Vec<Received> {
    receiver
        .until(ARRIVAL, |spans| {
            let named = by_name(spans, trace);
            named.get("PREPARE TRANSACTION").map_or(0, Vec::len) == 3
                && named.get("COMMIT PREPARED").map_or(0, Vec::len) == 3
                && named.contains_key("log decision")
                && named.contains_key("two-phase commit")
                && named.contains_key("POST /api/transaction")
        })
        .await
}

/// Checks a transaction across shards 0, 1 and 2 in `trace`: its `two-phase commit` a
/// child of the server span `server_span`, holding a prepare on each shard, then the
/// decision, then a commit on each shard.
fn assert_two_phase(
    spans: &[Received],
    settings: &ClusterSettings,
    trace: &str,
    server_span: &str,
    answer: &serde_json::Value,
) {
    let named = by_name(spans, trace);
    assert_eq!(one(&named, "POST /api/transaction").span_id(), server_span);
    let txn = one(&named, "two-phase commit");
    assert_eq!(
        txn.parent_span_id(),
        server_span,
        "the two-phase commit is a child of its request's span"
    );
    assert_eq!(txn.attribute("shardgate.shards").as_deref(), Some("3"));
    assert_eq!(
        txn.attribute("shardgate.txid").as_deref(),
        answer["txid"].as_str(),
        "{answer}"
    );
    let decision = one(&named, "log decision");
    assert_eq!(decision.parent_span_id(), txn.span_id());
    assert_eq!(
        decision.attribute("shardgate.decision").as_deref(),
        Some("commit")
    );
    for (stage, before_decision) in [("PREPARE TRANSACTION", true), ("COMMIT PREPARED", false)] {
        let mut shards = HashSet::new();
        for trip in &named[stage] {
            assert_eq!(trip.parent_span_id(), txn.span_id(), "{stage}");
            let shard: u32 = trip.attribute("shardgate.shard").unwrap().parse().unwrap();
            assert_trip(trip, settings, ShardId(shard));
            shards.insert(shard);
            if before_decision {
                assert!(trip.span.end_time_unix_nano <= decision.span.start_time_unix_nano);
            } else {
                assert!(trip.span.start_time_unix_nano >= decision.span.end_time_unix_nano);
            }
        }
        assert_eq!(shards, HashSet::from([0, 1, 2]), "{stage} on every shard");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transactions_spans_are_its_requests_at_the_default_log_level() {
    // Arrange: every trace recorded, logs at the gateway's default level.
    let receiver = Receiver::start();
    let bench = traced_gateway(&receiver, &[("RUST_LOG", "info")]).await;
    let settings = &bench.settings;
    let router = settings.validate().unwrap();
    let http = client();

    // Act 1: across the three shards, under a caller's trace it says is not sampled.
    let left_out = caller(1);
    let unsampled = format!("00-{}-{}-00", left_out.0, left_out.1);
    let keys = across(&router, 3, 100);
    let (trace, _, left_out_answer) = transact(&http, &bench, &keys, Some(&unsampled)).await;
    assert_eq!(trace, left_out.0);
    assert_eq!(
        left_out_answer["protocol"], "two-phase",
        "{left_out_answer}"
    );

    // Act 2: across the three shards, under a caller's sampled trace.
    let parent = caller(2);
    let keys = across(&router, 3, 200);
    let (trace, server_span, answer) = transact(&http, &bench, &keys, Some(&header(&parent))).await;
    assert_eq!(trace, parent.0);
    assert_eq!(answer["protocol"], "two-phase", "{answer}");

    // Assert: the prepares, the decision and the commits under the request's span.
    let spans = two_phase_spans(&receiver, &trace).await;
    let named = by_name(&spans, &trace);
    let server = one(&named, "POST /api/transaction");
    assert_eq!(server.parent_span_id(), parent.1, "under the caller's span");
    assert_two_phase(&spans, settings, &trace, &server_span, &answer);
    // The transaction left out was left out whole: no span of it, in any trace (its
    // spans ended before its answer, so before those above were sent).
    let txid = left_out_answer["txid"].as_str().unwrap();
    let leaked: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.trace_id() == left_out.0 || s.attribute("shardgate.txid").as_deref() == Some(txid)
        })
        .map(|s| (s.span.name.clone(), s.trace_id()))
        .collect();
    assert!(
        leaked.is_empty(),
        "the unsampled transaction exported {leaked:?}"
    );

    // Act 3: across the three shards without a traceparent: a trace of the gateway's own.
    let keys = across(&router, 3, 300);
    let (trace, server_span, answer) = transact(&http, &bench, &keys, None).await;
    assert_ne!(trace, parent.0);

    // Assert: the same, in that trace.
    let spans = two_phase_spans(&receiver, &trace).await;
    let named = by_name(&spans, &trace);
    assert_eq!(one(&named, "POST /api/transaction").parent_span_id(), "");
    assert_two_phase(&spans, settings, &trace, &server_span, &answer);

    // Act 4: two records on one shard, under a caller's sampled trace.
    let parent = caller(4);
    let keys = keys_on(&router, ShardId(1), 400, 2);
    let (trace, server_span, answer) = transact(&http, &bench, &keys, Some(&header(&parent))).await;
    assert_eq!(trace, parent.0);
    assert_eq!(answer["protocol"], "one-shard", "{answer}");

    // Assert: its one round a trip under a `one-shard commit` span of the request's.
    let spans = receiver
        .until(ARRIVAL, |spans| {
            let named = by_name(spans, &trace);
            ["POST /api/transaction", "one-shard commit", "transaction"]
                .iter()
                .all(|n| named.contains_key(*n))
        })
        .await;
    let named = by_name(&spans, &trace);
    let txn = one(&named, "one-shard commit");
    assert_eq!(txn.parent_span_id(), server_span);
    assert_eq!(txn.attribute("shardgate.shards").as_deref(), Some("1"));
    let round = one(&named, "transaction");
    assert_eq!(round.span.kind, CLIENT);
    assert_eq!(round.parent_span_id(), txn.span_id());
    assert_trip(round, settings, ShardId(1));
}
