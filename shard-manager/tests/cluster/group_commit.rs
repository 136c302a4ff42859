//! Single writes that arrive together commit together (`database.batch_writes`, on by
//! default, turned on here whatever the default): each keeps its own answer, version,
//! `created` flag and refusal. A group in which one write is refused (a slot its shard
//! does not own: SG001) commits every other write, once;
//! two writes of one record in one group get a version each; two sends of one
//! idempotency key in one group are applied once, the second replaying the first; a
//! group of deletes says of each whether there was a record.
//!
//! The futures are polled on one thread: the first write finds nothing in flight and goes
//! at once, alone, and every other joins the queue before the next group leaves; the
//! group sizes the primary counted prove that they went together.

use futures_util::future::join_all;
use serde_json::json;
use shard_manager::store::IdempotencyKey;
use shard_manager::{ClusterError, RoutedKey, ShardId};

use crate::fixtures::{doc, id, key_on, rows, table};
use test_support::scratch::{slots_of, Scratch, TOLD_AT};

const WRITES: usize = 20;

/// `WRITES` distinct keys routed to `shard`, none of them in `avoid`'s slot.
fn keys_for(cluster: &shard_manager::Cluster, shard: ShardId, avoid: &RoutedKey) -> Vec<RoutedKey> {
    let mut found: Vec<RoutedKey> = Vec::new();
    for i in 0.. {
        if found.len() == WRITES {
            break;
        }
        let key = key_on(cluster, shard, &format!("group-{i}"));
        if key.slot() != avoid.slot() && !found.iter().any(|f| f.as_str() == key.as_str()) {
            found.push(key);
        }
    }
    found
}

#[tokio::test]
async fn a_group_with_one_refused_write_commits_every_other_write_once() {
    let scratch = Scratch::create_with(|s| s.database.batch_writes = true).await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(0);
    let refused = key_on(&cluster, shard, "withheld");
    // The shard owns every slot the map gives it but the refused key's.
    let owned: Vec<i32> = slots_of(&cluster.router(), shard)
        .into_iter()
        .filter(|s| *s != refused.slot().0 as i32)
        .collect();
    scratch.tell(shard, &owned, TOLD_AT).await;
    let good = keys_for(&cluster, shard, &refused);

    let mut all: Vec<&RoutedKey> = good.iter().collect();
    all.insert(WRITES / 2, &refused);
    let writes = all.iter().map(|key| {
        let cluster = &cluster;
        let users = &users;
        async move {
            cluster
                .write(users, key, id("u1"), doc(json!({"k": key.as_str()})), None)
                .await
        }
    });
    let answers = join_all(writes).await;

    for (key, answer) in all.iter().zip(&answers) {
        if key.as_str() == refused.as_str() {
            match answer {
                Err(ClusterError::NotOwner { slots, .. }) => {
                    assert_eq!(slots, &refused.slot().0.to_string())
                }
                other => panic!("the withheld slot's write: {other:?}"),
            }
        } else {
            let written = answer.as_ref().expect("every other write commits");
            assert!(written.upserted.created, "{written:?}");
            assert_eq!(written.shard, shard);
        }
    }
    let client = scratch.connect(&scratch.primary(shard)).await;
    for key in &good {
        let stored = rows(&client, "users", key.as_str()).await;
        assert_eq!(stored.len(), 1, "{}: written once", key.as_str());
        let written = all
            .iter()
            .zip(&answers)
            .find(|(k, _)| k.as_str() == key.as_str())
            .and_then(|(_, a)| a.as_ref().ok())
            .expect("its answer");
        let version = written.upserted.version;
        assert_eq!((stored[0].0.as_str(), stored[0].1), ("u1", version));
        assert_eq!(stored[0].2, json!({"k": key.as_str()}));
    }
    assert!(rows(&client, "users", refused.as_str()).await.is_empty());

    let sizes = cluster.shards()[0].primary.write_batch_sizes().snapshot();
    let lone = sizes.cumulative.first().map(|(_, n)| *n).unwrap_or(0);
    assert!(
        sizes.batches > lone,
        "some group carried more than one write: {sizes:?}"
    );
    assert!(sizes.requests >= WRITES as u64, "{sizes:?}");
}

#[tokio::test]
async fn writes_of_one_record_and_of_one_key_in_a_group_keep_their_own_answers() {
    let scratch = Scratch::create_with(|s| s.database.batch_writes = true).await;
    let cluster = scratch.cluster();
    let users = table(&cluster, "users");
    let shard = ShardId(1);
    let key = key_on(&cluster, shard, "same");

    // One record written four times at once: four versions (from the shard's sequence:
    // increasing, not consecutive), one created, the last one stored.
    let writes = (0..4).map(|n| {
        let (cluster, users, key) = (&cluster, &users, &key);
        async move {
            cluster
                .write(users, key, id("r"), doc(json!({"n": n})), None)
                .await
                .expect("a write")
        }
    });
    let written = join_all(writes).await;
    let mut versions: Vec<i64> = written.iter().map(|w| w.upserted.version).collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 4, "a version each: {versions:?}");
    assert_eq!(written.iter().filter(|w| w.upserted.created).count(), 1);
    let created = written.iter().find(|w| w.upserted.created).unwrap();
    assert_eq!(
        created.upserted.version, versions[0],
        "the first created it"
    );
    let client = scratch.connect(&scratch.primary(shard)).await;
    let stored = rows(&client, "users", key.as_str()).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, versions[3]);
    // The first found nothing in flight and went alone; the three that queued behind it
    // share one commit, so one position.
    assert!(
        written[1..]
            .iter()
            .all(|w| w.token.lsn == written[1].token.lsn),
        "one commit, one position: {:?}",
        written.iter().map(|w| w.token.lsn).collect::<Vec<_>>()
    );

    // One idempotency key sent twice at once: applied once, the other replays it.
    let body = json!({"name": "Kim"});
    let request = IdempotencyKey::new(
        "",
        "group-key",
        &[b"write", body.to_string().as_bytes()],
        3600,
    );
    let sends = (0..2).map(|_| {
        let (cluster, users, key, body, request) = (&cluster, &users, &key, &body, &request);
        async move {
            cluster
                .write(users, key, id("k1"), doc(body.clone()), Some(request))
                .await
                .expect("a keyed write")
        }
    });
    let sent = join_all(sends).await;
    assert_eq!(
        sent.iter().filter(|w| w.replayed).count(),
        1,
        "one replays the other"
    );
    assert_eq!(sent[0].upserted.version, sent[1].upserted.version);
    let stored = rows(&client, "users", key.as_str()).await;
    let k1: Vec<_> = stored.iter().filter(|r| r.0 == "k1").collect();
    assert_eq!(k1.len(), 1);
    assert_eq!(k1[0].1, sent[0].upserted.version);

    // Deletes at once, one of a record that is not there.
    let deletes = ["r", "k1", "nothing"].map(|i| {
        let (cluster, users, key) = (&cluster, &users, &key);
        async move {
            cluster
                .delete(users, key, &id(i), None)
                .await
                .expect("a delete")
                .value
                .existed
        }
    });
    assert_eq!(join_all(deletes).await, vec![true, true, false]);
    assert!(rows(&client, "users", key.as_str()).await.is_empty());
}

/// A record `users`/`x` under a key on `shard`, written, for a test to hold its row.
async fn record_to_hold(
    cluster: &shard_manager::Cluster,
    users: &shard_manager::TableName,
    shard: ShardId,
    prefix: &str,
) -> RoutedKey {
    let key = key_on(cluster, shard, prefix);
    cluster
        .write(users, &key, id("x"), doc(json!({"n": 0})), None)
        .await
        .expect("the record to hold");
    key
}

/// Locks `key`'s record `x` in `holding` (`FOR UPDATE`) until it ends.
async fn hold(holding: &tokio_postgres::Transaction<'_>, key: &RoutedKey) {
    holding
        .execute(
            "SELECT 1 FROM records WHERE table_name = 'users' AND shard_key = $1 AND id = 'x' FOR UPDATE",
            &[&key.as_str()],
        )
        .await
        .expect("lock the row");
}

#[tokio::test]
async fn a_write_held_up_by_a_lock_goes_alone_and_holds_no_other_write_of_its_group_back() {
    // The writes run as tasks of this thread (the cluster's futures are not `Send`).
    tokio::task::LocalSet::new()
        .run_until(held_write_goes_alone())
        .await;
}

async fn held_write_goes_alone() {
    let scratch = Scratch::create_with(|s| s.database.batch_writes = true).await;
    let cluster = std::sync::Arc::new(scratch.cluster());
    let users = table(&cluster, "users");
    let shard = ShardId(2);
    let held = record_to_hold(&cluster, &users, shard, "held").await;
    // Another transaction holds the record's row, as a transaction in doubt would.
    let mut blocker = scratch.connect(&scratch.primary(shard)).await;
    let holding = blocker.transaction().await.expect("begin");
    hold(&holding, &held).await;

    let others: Vec<RoutedKey> = (0..5)
        .map(|i| key_on(&cluster, shard, &format!("free-{i}")))
        .collect();
    let spawn = |key: RoutedKey, n: i64| {
        let (cluster, users) = (cluster.clone(), users.clone());
        tokio::task::spawn_local(async move {
            cluster
                .write(&users, &key, id("x"), doc(json!({"n": n})), None)
                .await
        })
    };
    let blocked = spawn(held.clone(), 1);
    let free: Vec<_> = others.iter().map(|k| spawn(k.clone(), 2)).collect();
    // Every other write of the group commits while the row is still held.
    for write in free {
        let written = tokio::time::timeout(std::time::Duration::from_secs(3), write)
            .await
            .expect("a write beside a held row is not held back")
            .expect("the task")
            .expect("a write");
        assert!(written.upserted.created);
    }
    assert!(
        !blocked.is_finished(),
        "the held row's write waits for the row"
    );
    // Nor does the waiting write hold back the groups after its own.
    let later: Vec<_> = (0..3)
        .map(|i| spawn(key_on(&cluster, shard, &format!("later-{i}")), 3))
        .collect();
    for write in later {
        tokio::time::timeout(std::time::Duration::from_secs(3), write)
            .await
            .expect("a later group is not held back")
            .expect("the task")
            .expect("a write");
    }
    assert!(!blocked.is_finished(), "the held row's write still waits");
    holding.rollback().await.expect("release the row");
    let written = blocked
        .await
        .expect("the task")
        .expect("the held write, alone");
    assert!(!written.upserted.created);
    let client = scratch.connect(&scratch.primary(shard)).await;
    let stored = rows(&client, "users", held.as_str()).await;
    assert_eq!(
        (stored[0].1, &stored[0].2),
        (written.upserted.version, &json!({"n": 1}))
    );
}

/// Writes of two HTTP workers (two threads, each its own runtime, as the gateway's
/// workers are) to one primary leave in one group: the queue is the server's, not the
/// thread's. A first write waits on a held row (the group's lock bound, 100 ms), while
/// each thread sends six more; they go as the next group, which counts more writes
/// than either thread sent. Per-thread queues made two groups of at most six.
#[tokio::test]
async fn writes_from_two_threads_leave_in_one_group() {
    let scratch = Scratch::create_with(|s| s.database.batch_writes = true).await;
    let cluster = std::sync::Arc::new(scratch.cluster());
    let users = table(&cluster, "users");
    let shard = ShardId(1);
    let held = record_to_hold(&cluster, &users, shard, "held-two-threads").await;
    let mut blocker = scratch.connect(&scratch.primary(shard)).await;
    let holding = blocker.transaction().await.expect("begin");
    hold(&holding, &held).await;
    let before = cluster.shards()[1].primary.write_batch_sizes().snapshot();

    let keys: Vec<Vec<RoutedKey>> = (0..2)
        .map(|t| {
            (0..6)
                .map(|i| key_on(&cluster, shard, &format!("thread-{t}-{i}")))
                .collect()
        })
        .collect();
    let (done_tx, done_rx): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| tokio::sync::oneshot::channel::<()>())
        .unzip();
    let threads = {
        let (cluster, users, held) = (cluster.clone(), users.clone(), held.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let runs: Vec<_> = keys
                    .into_iter()
                    .zip(done_tx)
                    .enumerate()
                    .map(|(t, (keys, done))| {
                        let (cluster, users, held) = (&cluster, &users, &held);
                        scope.spawn(move || {
                            let runtime = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .expect("a runtime");
                            let local = tokio::task::LocalSet::new();
                            local.block_on(&runtime, async move {
                                let first = (t == 0).then(|| {
                                    let (cluster, users, held) =
                                        (cluster.clone(), users.clone(), held.clone());
                                    tokio::task::spawn_local(async move {
                                        cluster
                                            .write(
                                                &users,
                                                &held,
                                                id("x"),
                                                doc(json!({"n": 1})),
                                                None,
                                            )
                                            .await
                                    })
                                });
                                // The first write is in flight, held by the row.
                                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                                let writes = keys.iter().map(|key| {
                                    cluster.write(users, key, id("x"), doc(json!({"t": t})), None)
                                });
                                let answers = join_all(writes).await;
                                done.send(()).expect("the test waits");
                                let held_answer = match first {
                                    Some(task) => Some(task.await.expect("the task")),
                                    None => None,
                                };
                                (answers, held_answer)
                            })
                        })
                    })
                    .collect();
                runs.into_iter()
                    .map(|r| r.join().expect("a thread"))
                    .collect::<Vec<_>>()
            })
        })
    };
    for done in done_rx {
        tokio::time::timeout(std::time::Duration::from_secs(5), done)
            .await
            .expect("the writes beside the held row commit while it is held")
            .expect("the thread");
    }
    holding.rollback().await.expect("release the row");
    let results = threads.await.expect("the threads");

    for (answers, _) in &results {
        for answer in answers {
            assert!(answer.as_ref().expect("a write").upserted.created);
        }
    }
    let held_answer = results[0].1.as_ref().expect("the held write's answer");
    assert!(
        !held_answer
            .as_ref()
            .expect("the held write")
            .upserted
            .created
    );
    let after = cluster.shards()[1].primary.write_batch_sizes().snapshot();
    let over_eight = |s: &shard_manager::servers::batch_sizes::BatchSizesSnapshot| {
        s.batches
            - s.cumulative
                .iter()
                .find(|(b, _)| *b == 8)
                .map(|(_, n)| *n)
                .unwrap_or(0)
    };
    assert_eq!(
        over_eight(&after) - over_eight(&before),
        1,
        "one group carried the twelve writes of both threads: {after:?}"
    );
    // The held write's first try (a group of one) and the twelve.
    assert_eq!(after.requests - before.requests, 13, "{after:?}");
}

/// A group's write that fills the documents' GIN pending list merges it into the index
/// while the whole group waits: the migrated schema bounds that list at 256 kB (the
/// default, 4 MB, held every write of a shard 100-200 ms every few seconds under load;
/// docs/BENCHMARKS.md), on every shard.
#[tokio::test]
async fn the_document_index_merges_its_pending_entries_in_small_steps() {
    let scratch = Scratch::create().await;
    for shard in scratch.cluster().shards().iter() {
        let client = scratch.connect(&scratch.primary(shard.id)).await;
        let options: Vec<String> = client
            .query_one(
                "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE relname = 'records_data_gin'",
                &[],
            )
            .await
            .expect("the documents' index")
            .get(0);
        assert_eq!(options, vec!["gin_pending_list_limit=256"], "{}", shard.id);
    }
}
