//! A prepared transaction survives its primary failing over, in synchronous mode
//! (issue #31). Shard 0 is a synchronous pair, shard 1 a plain primary (`two_shards`).
//! Two transactions over both shards go through the library's coordinator
//! (`Cluster::transaction`) with the real coordinator log (`MetaLog`), which the test
//! wraps only to stop at the moment it wants:
//! - `undecided`: both parts prepared, then the log does not answer: nothing decided
//!   (the coordinator answers "in doubt" and leaves the parts prepared);
//! - `decided`: both parts prepared, `commit` logged, then shard 0's primary is killed
//!   (-9) before COMMIT PREPARED: shard 1's part commits, shard 0's cannot (answered
//!   `Committing`).
//!
//! A second later the replica is promoted (the HA manager's step). Then: the new
//! primary holds both shard-0 parts in `pg_prepared_xacts` (synchronous replication
//! carried them), and the recovery (`control_plane::txn::Recovery`, running all along
//! with a 3 s bound, following the map to the new primary) commits `decided` there and
//! rolls `undecided` back on both shards: `decided`'s two records present (shard 1's at
//! the version it committed with before the kill), `undecided`'s on neither shard, the
//! first transaction at the versions it was answered, nothing prepared anywhere, the log
//! `commit` and `abort`, the recovery reporting 3 parts resolved, none in doubt, and
//! the map naming the new primary at term 2.
//!
//! All but the promotion is shared ([`prepare_and_kill`], [`Prepared::check_resolved`],
//! written against `shards::Shards`) with `prepared_on_autoctl`, where pg_auto_failover
//! promotes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control_plane::txn::{MetaLog, Recovery};
use shard_manager::cluster::txn::log::{Decision, DecisionLog, LogFuture};
use shard_manager::cluster::txn::{TxnError, TxnOp};
use shard_manager::{Cluster, RecordId, ShardId, ShardKey};
use test_support::failover::ha_shard;
use test_support::failover::workload::doc;

use crate::shards::{Kill, Shards};
use crate::two_shards::{self, id_on};

/// The coordinator log passes through.
const PASS: u8 = 0;
/// The log does not answer (nothing is written).
const SILENT: u8 = 1;
/// The decision is written, then shard 0's primary is killed before the call returns.
const KILL_AFTER: u8 = 2;

/// The real log, stopped where the test says.
struct Stopping {
    inner: Arc<MetaLog>,
    mode: AtomicU8,
    kill: Kill,
    killed_at: Mutex<Option<Instant>>,
}

impl DecisionLog for Stopping {
    fn settle<'a>(
        &'a self,
        txid: &'a str,
        wanted: Decision,
        shards: &'a [ShardId],
    ) -> LogFuture<'a, Decision> {
        Box::pin(async move {
            match self.mode.load(Ordering::SeqCst) {
                SILENT => Err("the test's coordinator log did not answer".into()),
                KILL_AFTER => {
                    let decided = self.inner.settle(txid, wanted, shards).await?;
                    let kill = self.kill.clone();
                    tokio::task::spawn_blocking(move || kill()).await.unwrap();
                    *self.killed_at.lock().unwrap() = Some(Instant::now());
                    Ok(decided)
                }
                _ => self.inner.settle(txid, wanted, shards).await,
            }
        })
    }

    fn decisions<'a>(
        &'a self,
        txids: &'a [String],
    ) -> LogFuture<'a, std::collections::HashMap<String, Decision>> {
        self.inner.decisions(txids)
    }

    fn finished<'a>(&'a self, txid: &'a str) -> LogFuture<'a, ()> {
        self.inner.finished(txid)
    }
}

/// Creates `a` (on shard 0) and `b` (on shard 1) in one transaction.
fn both(cluster: &Cluster, a: &str, b: &str) -> Vec<TxnOp> {
    let table = cluster.tables().parse("users").expect("users");
    [a, b]
        .iter()
        .enumerate()
        .map(|(index, id)| TxnOp {
            index,
            table: table.clone(),
            key: cluster
                .router()
                .route(ShardKey::parse(id).unwrap())
                .unwrap(),
            id: RecordId::parse(id).unwrap(),
            data: Some(doc(index as u64)),
            if_version: Some(0),
        })
        .collect()
}

/// Our prepared parts on a server, by name.
const PREPARED: &str = "SELECT coalesce(string_agg(gid, ',' ORDER BY gid), '') \
                        FROM pg_prepared_xacts WHERE gid LIKE 'sg\\_%'";

fn versions(ids: &[&str]) -> String {
    let list: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
    format!(
        "SELECT coalesce(string_agg(id || '@' || version, ',' ORDER BY id), '') FROM records WHERE id IN ({})",
        list.join(",")
    )
}

/// Where the test stands once shard 0's primary is dead, for the checks after the
/// promotion.
pub struct Prepared {
    meta_log: Arc<MetaLog>,
    _recovery: Recovery,
    bound: Duration,
    prepared_at: Instant,
    /// When shard 0's primary was killed.
    pub killed: Instant,
    /// The first transaction's ids (shard 0, shard 1) and answered versions.
    ok: [String; 2],
    ok_v: Vec<i64>,
    /// `undecided`'s and `decided`'s ids (shard 0, shard 1), and their txids.
    und: [String; 2],
    dec: [String; 2],
    undecided: String,
    decided: String,
    /// `decided`'s shard-1 record as it committed before the kill (`id@version`).
    db_at: String,
}

/// The recovery running (every 200 ms, leaving parts younger than `bound` alone), a
/// transaction committed on both shards, then `undecided` left prepared and `decided`
/// logged `commit` with shard 0's primary killed before COMMIT PREPARED. Checks shard 1
/// committed `decided` and holds `undecided` prepared.
pub async fn prepare_and_kill(shards: &impl Shards, bound: Duration) -> Prepared {
    let cluster = shards.cluster().clone();
    let meta_log = Arc::new(MetaLog::new(shards.settings().clone()));
    let log = Arc::new(Stopping {
        inner: meta_log.clone(),
        mode: AtomicU8::new(PASS),
        kill: shards.kill(),
        killed_at: Mutex::new(None),
    });
    // The recovery runs all along, as in every gateway. Its bound leaves the parts alone
    // until well after the promotion, so the test sees them on the new primary first.
    cluster.set_decision_log(log.clone(), bound);
    let recovery = Recovery::spawn(
        cluster.clone(),
        meta_log.clone(),
        Duration::from_millis(200),
        bound,
    );

    // A transaction through the same path commits on both shards (the set-up works).
    let ok = [id_on(&cluster, 0, "ok-a"), id_on(&cluster, 1, "ok-b")];
    let answered = cluster
        .transaction(&both(&cluster, &ok[0], &ok[1]), None)
        .await
        .expect("a transaction before the failure");
    assert_eq!(answered.results.len(), 2);
    let ok_v = answered
        .results
        .iter()
        .map(|r| r.version.unwrap())
        .collect();

    // Undecided: both parts prepared, no decision.
    let prepared_at = Instant::now();
    let und = [id_on(&cluster, 0, "und-a"), id_on(&cluster, 1, "und-b")];
    log.mode.store(SILENT, Ordering::SeqCst);
    let undecided = match cluster
        .transaction(&both(&cluster, &und[0], &und[1]), None)
        .await
    {
        Err(TxnError::InDoubt { txid, .. }) => txid,
        other => panic!("expected in doubt, got {other:?}"),
    };
    // Decided: commit logged, then the primary dies before COMMIT PREPARED.
    let dec = [id_on(&cluster, 0, "dec-a"), id_on(&cluster, 1, "dec-b")];
    log.mode.store(KILL_AFTER, Ordering::SeqCst);
    let decided = match cluster
        .transaction(&both(&cluster, &dec[0], &dec[1]), None)
        .await
    {
        Err(TxnError::Committing { txid, shard, .. }) => {
            assert_eq!(shard, ShardId(0), "shard 0's part is the one not committed");
            txid
        }
        other => panic!("expected committing, got {other:?}"),
    };
    log.mode.store(PASS, Ordering::SeqCst);
    let killed = log
        .killed_at
        .lock()
        .unwrap()
        .expect("the primary was killed");
    // Shard 1 committed `decided` and holds `undecided` prepared.
    let db_at = shards.on_plain(&versions(&[&dec[1], &und[1]]));
    assert!(db_at.starts_with(&format!("{}@", dec[1])), "{db_at}");
    assert_eq!(shards.on_plain(PREPARED), format!("sg_{undecided}_1"));
    Prepared {
        meta_log,
        _recovery: recovery,
        bound,
        prepared_at,
        killed,
        ok,
        ok_v,
        und,
        dec,
        undecided,
        decided,
        db_at,
    }
}

impl Prepared {
    /// Once shard 0's replica was promoted (`promoted` after the kill), before the
    /// recovery's bound: it holds both shard-0 parts and neither's rows; then the
    /// recovery commits `decided` there and rolls `undecided` back on both shards, the
    /// rows are as the decisions say, nothing is prepared anywhere, the log and the
    /// recovery's report agree, and the map names the new primary at term 2. Prints the
    /// timeline from the kill.
    pub async fn check_resolved(self, shards: &impl Shards, promoted: Duration) {
        let (killed, cluster) = (self.killed, shards.cluster());
        let (und, dec, ok) = (&self.und, &self.dec, &self.ok);
        assert!(
            self.prepared_at.elapsed() < self.bound,
            "the check must come before the recovery's bound"
        );
        let mut on_new = vec![
            format!("sg_{}_0", self.decided),
            format!("sg_{}_0", self.undecided),
        ];
        on_new.sort();
        assert_eq!(shards.on_new(PREPARED), on_new.join(","));
        assert_eq!(shards.on_new(&versions(&[&dec[0], &und[0]])), "");
        let seen = killed.elapsed();

        // The recovery follows the map to the new primary once it is recorded.
        let (old, new) = shards.old_new();
        while cluster.shard(ShardId(0)).unwrap().primary.addr != new {
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "the cluster did not follow the promotion within 30 s of the kill"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let followed = killed.elapsed();
        let within = self.bound + Duration::from_secs(20);
        let committed = loop {
            let at = shards.on_new(&versions(&[&dec[0]]));
            if at.starts_with(&format!("{}@", dec[0])) {
                break killed.elapsed();
            }
            assert!(
                killed.elapsed() < within,
                "the decided part was not committed on the new primary within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let settled = loop {
            if shards.on_new(PREPARED).is_empty() && shards.on_plain(PREPARED).is_empty() {
                break killed.elapsed();
            }
            assert!(
                killed.elapsed() < within,
                "still prepared after {within:?}: new primary [{}], shard 1 [{}]",
                shards.on_new(PREPARED),
                shards.on_plain(PREPARED)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        eprintln!(
            "from the kill: promoted {promoted:?}, both shard-0 parts seen on the new primary \
             {seen:?} ({on_new:?}), followed {followed:?}, decided part committed there \
             {committed:?}, nothing prepared anywhere {settled:?} (recovery bound {:?})",
            self.bound
        );

        // All of `decided` (shard 1's part as it committed before the kill), none of
        // `undecided`, the first transaction at the versions it was answered.
        // (In id order: `dec-` before `ok-` before `und-`.)
        let on_new = shards.on_new(&versions(&[&ok[0], &dec[0], &und[0]]));
        let da_at = on_new.split(',').next().unwrap_or_default().to_owned();
        assert!(da_at.starts_with(&format!("{}@", dec[0])), "{on_new}");
        assert_eq!(on_new, format!("{da_at},{}@{}", ok[0], self.ok_v[0]));
        assert_eq!(
            shards.on_plain(&versions(&[&ok[1], &dec[1], &und[1]])),
            format!("{},{}@{}", self.db_at, ok[1], self.ok_v[1])
        );
        let decisions = self
            .meta_log
            .decisions(&[self.decided.clone(), self.undecided.clone()])
            .await
            .expect("the log reads");
        assert_eq!(decisions.get(&self.decided), Some(&Decision::Commit));
        assert_eq!(decisions.get(&self.undecided), Some(&Decision::Abort));
        // What the recovery reports (its round notes it after the last part it resolved).
        let reported = Instant::now();
        while cluster.in_doubt().get().2 < 3 && reported.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (in_doubt, _, resolved) = cluster.in_doubt().get();
        assert_eq!(
            (in_doubt, resolved),
            (0, 3),
            "in doubt, resolved (decided on shard 0, undecided on both shards)"
        );
        ha_shard::assert_failed_over(shards.settings(), cluster, &old, &new).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_survives_its_primary_failing_over_and_recovery_resolves_it() {
    let t0 = Instant::now();
    let (shards, _init) = two_shards::start().await;
    eprintln!("[{:?}] two shards up, map seeded", t0.elapsed());
    let prepared = prepare_and_kill(&shards, Duration::from_millis(3000)).await;
    eprintln!(
        "[{:?}] shard 0's primary killed after the decision",
        t0.elapsed()
    );
    // The HA manager's step, a second later.
    let promoted = shards.promoted(prepared.killed).await - prepared.killed;
    prepared.check_resolved(&shards, promoted).await;
}
