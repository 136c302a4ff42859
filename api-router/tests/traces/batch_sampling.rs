//! A group commit is recorded whenever it carried a recorded write, whatever the ratio:
//! with the sampler's ratio at 0, only writes whose caller said "sampled" are recorded,
//! and the group each of them shared arrives too, linked to them and to no write that
//! was left out.

use std::collections::HashSet;

use shard_manager::ShardId;

use super::receiver::Receiver;
use super::request_path::keys_on;
use super::{client, traced_gateway, user, ARRIVAL};

/// A caller's trace for request `n` and whether the caller sampled it.
fn caller(n: u32) -> (String, String, bool) {
    (
        format!("ba7{n:029x}"),
        format!("ca11e4{n:010x}"),
        n.is_multiple_of(2),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_that_carried_a_recorded_write_is_recorded_at_a_ratio_of_nothing() {
    // Arrange: new traces never sampled; a caller's decision followed.
    let receiver = Receiver::start();
    let bench = traced_gateway(
        &receiver,
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ("RUST_LOG", "warn,api_router::startup=info"),
        ],
    )
    .await;
    let router = bench.settings.validate().unwrap();
    let http = client();

    // Act: writes at once to one shard, every other one sampled by its caller, until a
    // group carries a sampled one.
    let mut round = 0;
    let (left_out, spans) = loop {
        round += 1;
        assert!(round <= 10, "no sampled write of ten rounds shared a group");
        let keys = keys_on(&router, ShardId(0), 5000 * round, 32);
        let sent = futures_util::future::join_all(keys.iter().map(|&n| {
            let (trace, span, sampled) = caller(n);
            let (http, bench) = (&http, &bench);
            async move {
                let flags = if sampled { "01" } else { "00" };
                let res = http
                    .post(bench.url("/api/write"))
                    .header("x-shard-key", format!("user_{n}"))
                    .header("traceparent", format!("00-{trace}-{span}-{flags}"))
                    .json(&user(n))
                    .send()
                    .await
                    .unwrap();
                assert!(res.status().is_success(), "write: {}", res.status());
                (trace, sampled)
            }
        }))
        .await;
        let recorded: HashSet<String> = sent
            .iter()
            .filter(|(_, s)| *s)
            .map(|(t, _)| t.clone())
            .collect();
        let left_out: HashSet<String> = sent
            .iter()
            .filter(|(_, s)| !*s)
            .map(|(t, _)| t.clone())
            .collect();
        // Every recorded write and its trip: its own child, or a group it links to,
        // received. Before a group followed its writes, no group ever arrived here.
        let spans = receiver
            .until(ARRIVAL, |spans| {
                let writes: Vec<_> = spans
                    .iter()
                    .filter(|s| s.span.name == "write" && recorded.contains(&s.trace_id()))
                    .collect();
                writes.len() == recorded.len()
                    && writes.iter().all(|w| {
                        spans.iter().any(|t| {
                            t.span.name == "group commit"
                                && (t.parent_span_id() == w.span_id() || w.links_to(t))
                        })
                    })
            })
            .await;
        let shared = spans.iter().any(|g| {
            g.span.name == "group commit"
                && g.parent_span_id().is_empty()
                && g.links().iter().any(|(t, _)| recorded.contains(t))
        });
        if shared {
            break (left_out, spans);
        }
    };

    // Assert: nothing of a write left out was recorded; every group is a root linked only
    // to recorded writes, counting every write it carried.
    let leaked: Vec<_> = spans
        .iter()
        .filter(|s| left_out.contains(&s.trace_id()))
        .map(|s| s.span.name.clone())
        .collect();
    assert!(leaked.is_empty(), "spans of writes left out: {leaked:?}");
    let groups: Vec<_> = spans
        .iter()
        .filter(|g| g.span.name == "group commit" && g.parent_span_id().is_empty())
        .collect();
    assert!(!groups.is_empty());
    for group in groups {
        let links = group.links();
        assert!(!links.is_empty(), "a group recorded with no recorded write");
        let size: usize = group
            .attribute("db.operation.batch.size")
            .and_then(|s| s.parse().ok())
            .expect("a group's size");
        assert!(size >= links.len().max(2), "size {size}, links {links:?}");
        for (trace, span) in &links {
            assert!(
                !left_out.contains(trace),
                "linked to a write left out: {trace}"
            );
            let write = spans
                .iter()
                .find(|s| s.trace_id() == *trace && s.span_id() == *span)
                .unwrap_or_else(|| panic!("the group links to {trace}/{span}, not received"));
            assert!(write.links_to(group), "{write:?} does not link back");
        }
    }
}
