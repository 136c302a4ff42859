//! A move started from the admin CLI is exported as an OpenTelemetry trace, as the
//! gateway's balancer's are: the real `shard-admin` binary, with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` naming an OTLP receiver inside the test (test-support's,
//! which the gateway's traces tests use too), moves a slot with its rows on databases of
//! the test's own (`common::scratch`: the dev cluster's map never changes).
//!
//! - The receiver holds the whole trace once the command has exited (the CLI sends its
//!   last spans before it exits): one `move slot` root with the real slot, shards, move
//!   id and map versions, its phases as children in order, the copy's rows and the
//!   switch's verification, as service `shard-admin`; nothing but the move's trace. The
//!   log lines on standard error are as without export.
//! - With the endpoint on a closed port, the same command moves the slot back: exit 0,
//!   the move done, within the flush's bound of the traced run, and one warning line
//!   that the spans were lost.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use control_plane::import::shards::Writer;
use control_plane::import::source::SourceRow;
use control_plane::map::change;
use control_plane::moves::{Move, Moves, Phase};
use serde_json::json;
use shard_manager::{ClusterSettings, ShardId, ShardKey};
use test_support::otlp_receiver::{
    assert_move_done, assert_steps_in_order, child, event_attribute, events, names, Received,
    Receiver,
};

use common::scratch::Scratch;
use common::{audit_and_rest, text};

/// The phases of a move that runs to its end, in order.
const PHASES: [&str; 5] = ["capture", "copy", "catch up", "switch", "clean"];

/// How long the CLI may wait for a collector before it exits (`shard_admin::traces`).
const FLUSH: Duration = shard_admin::traces::FLUSH;

/// Runs `cmd` to its end, killed (and the test failed) past `limit`: (what it printed,
/// how long it took).
fn run_within(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shard-admin");
    while child.try_wait().expect("wait for shard-admin").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("shard-admin's output");
            panic!(
                "shard-admin still running after {limit:?}: {}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();
    (
        child.wait_with_output().expect("shard-admin's output"),
        elapsed,
    )
}

/// The moves the scratch metadata database records, newest first.
fn recorded(rt: &tokio::runtime::Runtime, settings: &ClusterSettings) -> Vec<Move> {
    rt.block_on(async {
        let meta = control_plane::map::meta::connect(settings)
            .await
            .expect("metadata connection");
        Moves::new(&meta.client).list(10).await.expect("the moves")
    })
}

/// A finished move's standard error, export or not: no line of the moves' target (it is
/// for traces only), and its audit line, done.
fn assert_logs_as_ever(stderr: &str) {
    assert!(
        !stderr.contains("shardgate::moves"),
        "the moves' target is for traces only: {stderr}"
    );
    let (audit, _) = audit_and_rest(stderr);
    assert_eq!(audit.len(), 1, "one audit line: {stderr}");
    assert!(audit[0].contains("outcome=\"done\""), "{}", audit[0]);
}

#[test]
fn a_move_from_the_cli_is_exported_as_a_trace_and_a_collector_down_changes_nothing() {
    // Arrange: a scratch cluster, three records in one slot of shard 0, a receiver.
    let scratch = Scratch::new();
    for command in ["migrate", "init"] {
        let (code, stderr) = scratch.run(&[command]);
        assert_eq!(code, Some(0), "{command}: {stderr}");
    }
    let settings = scratch.settings.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let router = rt
        .block_on(change::current(&settings))
        .unwrap()
        .router()
        .unwrap();
    let key = (0..)
        .map(|i| format!("traced-{i}"))
        .find(|k| router.route(ShardKey::parse(k).unwrap()).unwrap().shard() == ShardId(0))
        .unwrap();
    let slot = router.route(ShardKey::parse(&key).unwrap()).unwrap().slot();
    let rows: Vec<SourceRow> = (0..3)
        .map(|n| SourceRow {
            key: key.clone(),
            id: format!("r{n}"),
            data: json!({ "n": n }).to_string(),
        })
        .collect();
    rt.block_on(async {
        let mut writer = Writer::open(&settings, "events").await.expect("writer");
        writer.apply(&rows, &[]).await.expect("write records");
    });
    let receiver = rt.block_on(async { Receiver::start() });
    let slot_arg = slot.0.to_string();

    // Act: move the slot to shard 1, exporting to the receiver (batches every 5 s, the
    // default: the last ones leave only because the CLI sends them before it exits).
    let endpoint = receiver.endpoint();
    let traced = scratch.command(
        &[
            "move-slots",
            "--from",
            "0",
            "--to",
            "1",
            "--slots",
            &slot_arg,
        ],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let (out, took) = run_within(traced, Duration::from_secs(180));

    // Assert: the move done, as the metadata database recorded it.
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "move-slots: {stderr}");
    assert_logs_as_ever(&stderr);
    assert!(
        !stderr.contains("not exported") && !stderr.contains("traces off"),
        "no span lost: {stderr}"
    );
    let moves = recorded(&rt, &settings);
    assert_eq!(moves.len(), 1, "{moves:?}");
    let record = &moves[0];
    assert_eq!(record.phase, Phase::Done);
    assert_eq!(record.detail.kind, "move-slots");
    assert_eq!(record.detail.slots, [slot.0 as i32]);
    let before = record.detail.map_before;
    assert_eq!(record.detail.map_after, Some(before + 1));

    // The trace, whole, already received: one root, the move's.
    let spans = receiver.received();
    let roots: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.name == "move slot")
        .collect();
    assert_eq!(roots.len(), 1, "one move, one run: {:?}", names(&roots));
    let mv = roots[0];
    assert_eq!(mv.parent_span_id(), "", "a move is a trace of its own");
    assert!(
        spans.iter().all(|s| s.trace_id() == mv.trace_id()),
        "only the move's trace is exported: {:?}",
        spans
            .iter()
            .map(|s| (s.span.name.as_str(), s.trace_id()))
            .collect::<Vec<_>>()
    );
    for span in &spans {
        assert_eq!(
            span.resource_attribute("service.name").as_deref(),
            Some("shard-admin"),
            "{}",
            span.span.name
        );
    }
    assert_move_done(mv, record.id, "move-slots", &slot_arg, (0, 1), before);

    // Its phases, in order, each a child that ends before the next starts.
    assert_steps_in_order(&spans, mv, &PHASES);
    // The copy copied the slot's three rows; the switch verified them under the fence.
    let copy = child(&spans, mv, "copy");
    let copied = events(copy, "copied");
    assert_eq!(copied.len(), 1, "{copy:?}");
    assert_eq!(
        event_attribute(copied[0], "shardgate.rows").as_deref(),
        Some("3")
    );
    let switch = child(&spans, mv, "switch");
    let verify = child(&spans, child(&spans, switch, "fence"), "verify");
    assert_eq!(
        verify.attribute("shardgate.rows_checked").as_deref(),
        Some("3")
    );

    // Act: the slot moved back, the endpoint on a port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = format!("http://127.0.0.1:{closed}");
    let untraced = scratch.command(
        &[
            "move-slots",
            "--from",
            "1",
            "--to",
            "0",
            "--slots",
            &slot_arg,
        ],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", down.as_str())],
    );
    let bound = took + FLUSH + Duration::from_secs(30);
    let (out, _) = run_within(untraced, bound);

    // Assert: the command's result as ever, the move done, and the loss said once.
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "move-slots back: {stderr}");
    assert_logs_as_ever(&stderr);
    let lost: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("traces: spans of this command not exported"))
        .collect();
    assert_eq!(lost.len(), 1, "{stderr}");
    assert!(lost[0].contains(" WARN "), "{}", lost[0]);
    assert!(lost[0].contains("exported=0"), "{}", lost[0]);
    let moves = recorded(&rt, &settings);
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert_eq!(moves[0].phase, Phase::Done, "{:?}", moves[0]);
    assert_eq!(moves[0].detail.target, ShardId(0));
    let map = rt.block_on(change::current(&settings)).unwrap();
    assert!(
        map.slots_of(ShardId(0)).contains(&(slot.0 as i32)),
        "the slot is home again"
    );
    assert_eq!(
        receiver.received().len(),
        spans.len(),
        "nothing of the second run reached the first receiver"
    );
}
