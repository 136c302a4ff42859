//! The resharding benchmark (not part of a normal run; figures in docs/BENCHMARKS.md):
//!
//! ```text
//! eval "$(./setup.sh env)"
//! cargo bench -p test-app --bench topology -- resharding
//! ```
//!
//! 1. Rows moved per second ÷ rows per second of a plain binary COPY of the same rows
//!    from the same source into a table shaped like `records` on the same target.
//! 2. The write pause at the switch as clients see it: writers keep writing keys of the
//!    moving slots through the gateway during 30 moves (back and forth); for each move,
//!    the longest write that overlapped its switch; p50/p99/max over the moves. And the
//!    extra latency of writes to a slot while it is being copied.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control_plane::moves::{mover, plan::Which, Move, Phase};
use serde_json::json;
use shard_manager::servers::connection_url;
use shard_manager::ShardKey;
use test_app::{spawn_app, TestApp};
use test_support::outage::serial;

use crate::copy::copy_between;

const ROWS: usize = 150_000;
const COLUMNS: &str = "table_name, shard_key, id, slot, data, version, created_at, updated_at";

async fn load(app: &TestApp) {
    for batch in 0..ROWS / 1000 {
        let records: Vec<_> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                json!({"shard_key": format!("b-{}", n % 20_000), "id": format!("e{n}"),
                       "data": {"n": n, "name": format!("event {n}"), "tags": ["a", "b"]}})
            })
            .collect();
        let res = app
            .bulk(None, &json!({"table": "events", "records": records}))
            .await;
        assert_eq!(res.status().as_u16(), 200);
    }
}

async fn client(app: &TestApp, shard: usize) -> tokio_postgres::Client {
    let url = connection_url(&app.settings.cluster.database, &app.primary(shard));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Rows per second of a binary COPY of `slots` from shard 0 into a scratch table on shard 1.
async fn plain_copy(app: &TestApp, slots: &[i32]) -> (u64, f64) {
    let (source, target) = (client(app, 0).await, client(app, 1).await);
    target
        .batch_execute("CREATE TABLE bench_copy (LIKE records INCLUDING ALL)")
        .await
        .unwrap();
    let list: Vec<String> = slots.iter().map(i32::to_string).collect();
    let started = Instant::now();
    let rows = copy_between(
        &source,
        &format!(
            "COPY (SELECT {COLUMNS} FROM records WHERE slot IN ({})) TO STDOUT (FORMAT binary)",
            list.join(",")
        ),
        &target,
        &format!("COPY bench_copy ({COLUMNS}) FROM STDIN (FORMAT binary)"),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    target.batch_execute("DROP TABLE bench_copy").await.unwrap();
    (rows, rows as f64 / secs)
}

/// Runs a move to the end; its record, total seconds, and seconds spent in each phase.
async fn run_move(
    app: &TestApp,
    from: u32,
    to: u32,
    which: Which,
) -> (Move, f64, Vec<(Phase, f64)>) {
    let settings = &app.settings.cluster;
    let request = mover::Request {
        kind: "move-slots".into(),
        from,
        to,
        which,
    };
    let started = Instant::now();
    let mv = mover::start(settings, &request).await.unwrap();
    let mut marks: Vec<(Phase, Instant)> = Vec::new();
    let mut progress = |m: &Move| {
        if marks.last().map(|(p, _)| *p) != Some(m.phase) {
            marks.push((m.phase, Instant::now()));
        }
    };
    let mv = mover::run(settings, mv.id, &mut progress).await.unwrap();
    assert_eq!(mv.phase, Phase::Done);
    let phases = marks
        .windows(2)
        .map(|w| (w[0].0, (w[1].1 - w[0].1).as_secs_f64()))
        .collect();
    (mv, started.elapsed().as_secs_f64(), phases)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run() {
    let _serial = serial().await;
    let app = spawn_app().await;
    load(&app).await;
    let map = control_plane::map::change::current(&app.settings.cluster)
        .await
        .unwrap();
    let owned = map.slots_of(shard_manager::ShardId(0));
    let big: Vec<i32> = owned[..256].to_vec();

    let (rows, copy_rate) = plain_copy(&app, &big).await;
    let list = control_plane::moves::state::ranges(&big);
    let (mv, secs, phases) = run_move(&app, 0, 1, Which::List(list)).await;
    let move_rate = mv.rows_copied as f64 / secs;
    let copying = phases
        .iter()
        .find(|(p, _)| *p == Phase::Copying)
        .map_or(0.0, |(_, s)| *s);
    let shown: Vec<String> = phases
        .iter()
        .map(|(p, s)| format!("{} {:.2} s", p.as_str(), s))
        .collect();
    eprintln!(
        "copy phase alone: {:.0} rows/s, ratio {:.2} to plain COPY; phases: {}",
        mv.rows_copied as f64 / copying,
        mv.rows_copied as f64 / copying / copy_rate,
        shown.join(", ")
    );
    eprintln!(
        "rows: plain COPY {rows} rows at {copy_rate:.0} rows/s; move of 256 slots {} rows in {secs:.2} s = {move_rate:.0} rows/s (every phase, source rows deleted); ratio {:.2}; fence {:?} ms",
        mv.rows_copied,
        move_rate / copy_rate,
        mv.fence_ms
    );

    // Writers on keys of 16 slots that go back and forth.
    let slots: Vec<i32> = owned[256..272].to_vec();
    let router = app.router();
    let keys: Vec<String> = (0..)
        .map(|i| format!("p-{i}"))
        .filter(|k| {
            slots.contains(
                &(router
                    .route(ShardKey::parse(k).unwrap())
                    .unwrap()
                    .placement()
                    .slot
                    .0 as i32),
            )
        })
        .take(32)
        .collect();
    let log: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, base, keys, log, stop) = (
                app.client.clone(),
                app.address.clone(),
                keys.clone(),
                log.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let key = &keys[(w * 8 + n) % keys.len()];
                    let sent = Instant::now();
                    let res = client
                        .post(format!("{base}/api/write"))
                        .header("x-shard-key", key)
                        .json(&json!({"table": "users", "id": "p", "data": {"n": n}}))
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        res.status().is_success(),
                        "write during a move: {}",
                        res.status()
                    );
                    log.lock()
                        .unwrap()
                        .push((sent, sent.elapsed().as_secs_f64() * 1000.0));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let quiet_end = Instant::now();
    let mut pauses = Vec::new();
    let mut fences = Vec::new();
    let mut windows = Vec::new();
    for round in 0..30u32 {
        let (from, to) = if round % 2 == 0 { (0, 2) } else { (2, 0) };
        let started = Instant::now();
        let (mv, _, _) = run_move(
            &app,
            from,
            to,
            Which::List(control_plane::moves::state::ranges(&slots)),
        )
        .await;
        windows.push((started, Instant::now()));
        fences.push(mv.fence_ms.unwrap_or(0) as f64);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap();
    let mut quiet: Vec<f64> = log
        .iter()
        .filter(|(t, _)| *t < quiet_end)
        .map(|(_, ms)| *ms)
        .collect();
    let mut during: Vec<f64> = Vec::new();
    for (from, to) in &windows {
        let inside: Vec<f64> = log
            .iter()
            .filter(|(t, _)| t >= from && t <= to)
            .map(|(_, ms)| *ms)
            .collect();
        pauses.push(inside.iter().cloned().fold(0.0, f64::max));
        during.extend(inside);
    }
    for v in [&mut quiet, &mut during, &mut pauses, &mut fences] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    eprintln!(
        "switch pause seen by clients (longest write per move, 30 moves of 16 slots): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; the mover's fence: p50 {:.0} ms, max {:.0} ms",
        pct(&pauses, 0.5), pct(&pauses, 0.99), pct(&pauses, 1.0), pct(&fences, 0.5), pct(&fences, 1.0)
    );
    eprintln!(
        "writes to the moving slots: before the moves p50 {:.2} ms p99 {:.2} ms ({} writes); during the moves p50 {:.2} ms p99 {:.2} ms ({} writes)",
        pct(&quiet, 0.5), pct(&quiet, 0.99), quiet.len(), pct(&during, 0.5), pct(&during, 0.99), during.len()
    );
}
