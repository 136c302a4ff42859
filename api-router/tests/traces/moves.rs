//! Moves and the balancer as a collector receives them: the gateway's automatic
//! balancer, under writes to one shard, decides in a round of its own (a `balance`
//! trace with the load it weighed and its decision) and runs a move, which is a trace of
//! its own (`move slot`, a root, no request's), with the real slot, shards, move id and
//! map versions, its phases as children in order, the fence and the verification of
//! the slot's real rows inside the switch; the round and the move link both ways.
//!
//! The move runs on the test's own databases (a fresh shard database on every primary
//! and a metadata database of its own, dropped at the end): the shared cluster's map
//! never changes.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use shard_manager::{Router, ShardId, ShardKey, Slot};

use super::receiver::{
    assert_move_done, assert_steps_in_order, child, event_attribute, events, Received, Receiver,
};
use super::{client, is_server, traced_gateway};

/// How long the balancer may take to decide, move and export (its hold is 2 s, its
/// checks every second; a move of a few rows takes seconds).
const MOVED: Duration = Duration::from_secs(90);

/// Shard keys on shard 0, each in a slot of its own: (key, slot).
fn keys_in_slots_of_shard_0(router: &Router, count: usize) -> Vec<(String, Slot)> {
    let mut taken: Vec<(String, Slot)> = Vec::new();
    for n in 0.. {
        if taken.len() == count {
            break;
        }
        let key = format!("mover_{n}");
        let routed = router.route(ShardKey::parse(&key).unwrap()).unwrap();
        if routed.shard() == ShardId(0) && taken.iter().all(|(_, s)| *s != routed.slot()) {
            taken.push((key, routed.slot()));
        }
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancers_move_is_a_trace_of_its_own_linked_with_the_round_that_decided_it() {
    // Arrange: a gateway that balances by load after 2 s above the margin, at most one
    // slot an hour (so one move, of the heaviest slot), and exports every trace.
    let receiver = Receiver::start();
    let bench = traced_gateway(
        &receiver,
        &[
            ("SHARDGATE__BALANCER__AUTO", "true"),
            ("SHARDGATE__BALANCER__HOLD_SECS", "2"),
            ("SHARDGATE__BALANCER__CHECK_SECS", "1"),
            ("SHARDGATE__BALANCER__SPACING_SECS", "3600"),
            ("SHARDGATE__BALANCER__MAX_SLOTS_PER_HOUR", "1"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
            ("RUST_LOG", "warn,api_router::startup=info"),
        ],
    )
    .await;
    let router = bench.settings.validate().unwrap();
    let http = client();

    // Act: records in four slots of shard 0, the first slot's the most (so the
    // heaviest slot is known: the balancer moves it).
    let keys = keys_in_slots_of_shard_0(&router, 4);
    let per_key = [4, 2, 2, 2];
    let mut writes = 0;
    for ((key, _), records) in keys.iter().zip(per_key) {
        for r in 0..records {
            let res = http
                .post(bench.url("/api/write"))
                .header("x-shard-key", key)
                .json(&json!({"table": "users", "id": format!("{key}-{r}"), "data": {"r": r}}))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "write: {}", res.status());
            writes += 1;
        }
    }
    let (heavy_key, heavy_slot) = keys[0].clone();

    // Assert: the move's trace, whole (its last phase ends after every gateway routes
    // with the next map), and the round that decided it (exported in a batch of its
    // own, maybe later).
    let phases = ["capture", "copy", "catch up", "switch", "clean"];
    let spans = receiver
        .until(MOVED, |spans| {
            spans.iter().any(|m| {
                m.span.name == "move slot"
                    && m.span.end_time_unix_nano > 0
                    && phases.iter().all(|p| {
                        spans.iter().any(|c| {
                            c.span.name == *p
                                && c.trace_id() == m.trace_id()
                                && c.parent_span_id() == m.span_id()
                        })
                    })
                    && spans
                        .iter()
                        .any(|r| r.span.name == "balance" && r.links_to(m))
            })
        })
        .await;
    let moves: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.name == "move slot")
        .collect();
    assert_eq!(moves.len(), 1, "one move, one run: {moves:?}");
    let mv = moves[0];

    // The move as the metadata database recorded it.
    let meta = control_plane::map::meta::connect(&bench.settings)
        .await
        .expect("metadata connection");
    let recorded = control_plane::moves::Moves::new(&meta.client)
        .list(10)
        .await
        .expect("the moves");
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let record = &recorded[0];
    let (id, source, target) = (record.id, record.detail.source.0, record.detail.target.0);
    let (before, after) = (record.detail.map_before, record.detail.map_after);
    assert_eq!(record.detail.kind, "balance");
    assert_eq!(record.phase, control_plane::moves::Phase::Done);
    assert_eq!(
        record.detail.slots,
        [heavy_slot.0 as i32],
        "the heaviest slot moved"
    );
    assert_eq!(source, 0);
    assert_ne!(target, 0);

    // A root, of no request's trace, with the move's real facts.
    assert_eq!(mv.parent_span_id(), "", "a move is a trace of its own");
    assert!(
        !spans
            .iter()
            .any(|s| s.trace_id() == mv.trace_id() && is_server(s)),
        "a request's span in the move's trace"
    );
    assert_eq!(after, Some(before + 1));
    assert_move_done(
        mv,
        id,
        "balance",
        &heavy_slot.0.to_string(),
        (0, target),
        before,
    );
    assert_eq!(
        mv.attribute("shardgate.move.phase_at_start").as_deref(),
        Some("capturing")
    );

    // Its phases, in order, each a child that ends before the next starts.
    assert_steps_in_order(&spans, mv, &phases);
    // The copy copied the slot's rows, one group.
    let copy = child(&spans, mv, "copy");
    let copied = events(copy, "copied");
    assert_eq!(copied.len(), 1, "{copy:?}");
    assert_eq!(
        event_attribute(copied[0], "shardgate.rows").as_deref(),
        Some("4"),
        "the heaviest slot's four records"
    );
    // The switch: the fence, and inside it the verification of the slot's four rows.
    let switch = child(&spans, mv, "switch");
    let fence = child(&spans, switch, "fence");
    let fence_ms: i64 = fence
        .attribute("shardgate.fence_ms")
        .expect("how long writes waited")
        .parse()
        .unwrap();
    assert!(fence_ms >= 0);
    let verify = child(&spans, fence, "verify");
    assert_eq!(
        verify.attribute("shardgate.rows_checked").as_deref(),
        Some("4")
    );
    assert_eq!(
        verify.attribute("shardgate.slots_differing").as_deref(),
        Some("0")
    );

    // The round that decided it: a root of its own, what it weighed, its decision, and
    // a link to the move, which links back.
    let rounds: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.name == "balance" && s.links_to(mv))
        .collect();
    assert_eq!(rounds.len(), 1, "one round links to the move");
    let round = rounds[0];
    assert!(mv.links_to(round), "the move links back to its round");
    assert_eq!(round.parent_span_id(), "");
    assert_ne!(round.trace_id(), mv.trace_id());
    assert_eq!(
        round.attribute("shardgate.balancer.decision").as_deref(),
        Some("move")
    );
    assert_eq!(
        round.attribute("shardgate.balancer.reason_kind").as_deref(),
        Some("above the mean")
    );
    assert_eq!(
        round.attribute("shardgate.balancer.load"),
        Some(format!("{writes},0,0")),
        "each shard's requests over the last minute"
    );
    assert_eq!(
        round.attribute("shardgate.map_version"),
        Some(before.to_string())
    );
    let decided: Vec<_> = round
        .span
        .events
        .iter()
        .filter(|e| e.name == "move decided")
        .collect();
    assert_eq!(decided.len(), 1, "{round:?}");
    assert_eq!(
        event_attribute(decided[0], "shardgate.slots"),
        Some(heavy_slot.0.to_string())
    );
    assert_eq!(
        event_attribute(decided[0], "shardgate.to_shard"),
        Some(target.to_string())
    );
    assert!(round.span.start_time_unix_nano <= mv.span.start_time_unix_nano);
    assert!(round.span.end_time_unix_nano >= mv.span.end_time_unix_nano);
    // The rounds before it held (the rise, for its 2 s), and said so.
    let held: HashMap<String, usize> = spans
        .iter()
        .filter(|s| {
            s.span.name == "balance" && s.span.end_time_unix_nano <= round.span.start_time_unix_nano
        })
        .filter_map(|s| s.attribute("shardgate.balancer.decision"))
        .fold(HashMap::new(), |mut m, d| {
            *m.entry(d).or_default() += 1;
            m
        });
    assert!(held.keys().all(|d| d == "hold"), "{held:?}");
    assert!(held.get("hold").copied().unwrap_or(0) >= 1, "{held:?}");

    // The records moved with their slot: read back through the gateway.
    for r in 0..4 {
        let res = http
            .get(bench.url(&format!("/api/read?table=users&id={heavy_key}-{r}")))
            .header("x-shard-key", &heavy_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{heavy_key}-{r} after the move");
    }
}
