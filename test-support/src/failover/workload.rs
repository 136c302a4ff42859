//! The failover tests' load: writers (single and bulk) that record every acknowledged
//! write with its version and when it was acknowledged, a reader of records written
//! before the failure, and the check that every acknowledged write is stored exactly
//! once (at the version its acknowledgement gave: a second application would raise it).
//! A writer may also wait for a replica to apply each write before counting it
//! acknowledged (`x-durability: replica`), or write back to back (the benchmarks).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shard_manager::wal::Consistency;
use shard_manager::{BulkItem, Cluster, Document, Lsn, RecordId, ShardKey};

/// One acknowledged write.
#[derive(Debug, Clone)]
pub struct Acked {
    pub id: String,
    pub version: i64,
    /// The primary's WAL position read right after the commit (its token): at or past
    /// the end of the commit's record.
    pub lsn: Lsn,
    /// When the write was sent.
    pub sent: Instant,
    /// When the acknowledgement came back.
    pub at: Instant,
}

/// How a writer writes.
#[derive(Debug, Clone, Copy)]
pub struct Writes {
    /// The wait between two writes.
    pub pause: Duration,
    /// A write counts as acknowledged only once a replica has applied it too, as with
    /// `x-durability: replica` (one that no replica applied in time counts as failed).
    pub on_replica: bool,
}

impl Writes {
    /// One write every 5 ms or so, acknowledged by the primary: the failover tests' load.
    pub const PACED: Writes = Writes {
        pause: Duration::from_millis(5),
        on_replica: false,
    };
}

/// What the load saw.
#[derive(Default)]
pub struct Tally {
    pub acked: Mutex<Vec<Acked>>,
    /// Ids of records acknowledged by bulk writes (every record of the batch).
    pub acked_bulk: Mutex<Vec<String>>,
    pub failed: AtomicU64,
    pub reads_served: AtomicU64,
    pub reads_failed: AtomicU64,
}

impl Tally {
    /// Every acknowledged single write, and `before`, as (id, version) in id order.
    pub fn expected(&self, before: &[Acked]) -> Vec<(String, i64)> {
        let acked = self.acked.lock().unwrap();
        let mut all: Vec<(String, i64)> = acked
            .iter()
            .chain(before)
            .map(|a| (a.id.clone(), a.version))
            .collect();
        all.sort();
        all
    }

    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// The first acknowledgement at or after `t`.
    pub fn first_ack_after(&self, t: Instant) -> Option<Instant> {
        self.acked
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.at)
            .filter(|at| *at >= t)
            .min()
    }
}

pub fn doc(n: u64) -> Document {
    Document::parse(serde_json::json!({"n": n})).expect("a document")
}

/// Writes `name-0`, `name-1`, ... until `stop`, recording each acknowledged id;
/// failures are counted, not retried (a write whose connection died after the send
/// is never re-sent: it may have committed).
pub async fn writer(cluster: &Cluster, name: &'static str, stop: &AtomicBool, tally: &Tally) {
    writes(cluster, name, stop, tally, Writes::PACED).await
}

/// [`writer`], writing as `how` says.
pub async fn writes(
    cluster: &Cluster,
    name: &'static str,
    stop: &AtomicBool,
    tally: &Tally,
    how: Writes,
) {
    let table = cluster.tables().parse("users").expect("users");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{name}-{i}");
        let key = cluster
            .router()
            .route(ShardKey::parse(&id).expect("a key"))
            .expect("routes");
        let sent = Instant::now();
        let written = match cluster
            .write(&table, &key, RecordId::parse(&id).unwrap(), doc(i), None)
            .await
        {
            Ok(w) if how.on_replica => cluster.await_replica(w.token).await.map(|_| w),
            other => other,
        };
        match written {
            Ok(w) => tally.acked.lock().unwrap().push(Acked {
                id,
                version: w.upserted.version,
                lsn: w.token.lsn,
                sent,
                at: Instant::now(),
            }),
            Err(e) => {
                eprintln!("write {id}: {e}");
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += 1;
        if !how.pause.is_zero() {
            tokio::time::sleep(how.pause).await;
        }
    }
}

/// Writes batches of three (`name-i-0..2`) with bulk writes until `stop`, recording
/// the ids of every batch acknowledged whole.
pub async fn bulk_writer(cluster: &Cluster, name: &'static str, stop: &AtomicBool, tally: &Tally) {
    let table = cluster.tables().parse("users").expect("users");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<String> = (0..3).map(|j| format!("{name}-{i}-{j}")).collect();
        let items = ids
            .iter()
            .enumerate()
            .map(|(index, id)| BulkItem {
                index,
                key: cluster
                    .router()
                    .route(ShardKey::parse(id).expect("a key"))
                    .expect("routes"),
                id: RecordId::parse(id).unwrap(),
                data: doc(i),
            })
            .collect();
        match cluster.bulk_write(&table, items, None).await {
            Ok(out) if out.failed.is_empty() && out.written() == 3 => {
                tally.acked_bulk.lock().unwrap().extend(ids)
            }
            other => {
                eprintln!("bulk {name}-{i}: {:?}", other.map(|o| o.failed));
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes `before-0..n` and returns them with their versions (acknowledged).
pub async fn write_before(cluster: &Cluster, n: u64) -> Vec<Acked> {
    let table = cluster.tables().parse("users").expect("users");
    let mut written = Vec::new();
    for i in 0..n {
        let id = format!("before-{i}");
        let key = cluster
            .router()
            .route(ShardKey::parse(&id).unwrap())
            .unwrap();
        let sent = Instant::now();
        let w = cluster
            .write(&table, &key, RecordId::parse(&id).unwrap(), doc(i), None)
            .await
            .expect("a write before the failure");
        written.push(Acked {
            id,
            version: w.upserted.version,
            lsn: w.token.lsn,
            sent,
            at: Instant::now(),
        });
    }
    written
}

/// Eventual reads of `ids`, round robin, until `stop`: each must find its record.
pub async fn reader(cluster: &Cluster, ids: &[String], stop: &AtomicBool, tally: &Tally) {
    let table = cluster.tables().parse("users").expect("users");
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = &ids[i % ids.len()];
        let key = cluster
            .router()
            .route(ShardKey::parse(id).unwrap())
            .unwrap();
        let id = RecordId::parse(id).unwrap();
        match cluster.read(&table, &key, &id, Consistency::Eventual).await {
            Ok(served) if served.value.is_some() => {
                tally.reads_served.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                eprintln!("read {id:?}: {:?}", other.map(|s| s.value.is_some()));
                tally.reads_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `SELECT` that lists `expected`'s ids with their stored versions, `id|version`
/// per line, in id order.
pub fn stored_versions_sql(expected: &[(String, i64)]) -> String {
    let list = in_list(expected.iter().map(|(i, _)| i.as_str()));
    format!("SELECT id, version FROM records WHERE id IN ({list}) ORDER BY id")
}

/// The `SELECT` that counts the records among `ids`.
pub fn count_sql(ids: &[String]) -> String {
    let list = in_list(ids.iter().map(String::as_str));
    format!("SELECT count(*) FROM records WHERE id IN ({list})")
}

fn in_list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",")
}

/// Parses `psql -At` output of [`stored_versions_sql`].
pub fn parse_versions(out: &str) -> Vec<(String, i64)> {
    out.lines()
        .map(|l| {
            let (id, v) = l.split_once('|').expect("id|version");
            (id.to_owned(), v.parse().expect("a version"))
        })
        .collect()
}

/// (lost, applied twice): acknowledged writes missing from `stored`, and those stored
/// at another version than their acknowledgement gave.
pub fn lost_and_twice(expected: &[(String, i64)], stored: &[(String, i64)]) -> (usize, usize) {
    let lost = expected
        .iter()
        .filter(|e| !stored.iter().any(|s| s.0 == e.0))
        .count();
    let twice = expected
        .iter()
        .filter(|e| stored.iter().any(|s| s.0 == e.0 && s.1 != e.1))
        .count();
    (lost, twice)
}
