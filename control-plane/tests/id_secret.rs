//! The cluster's secret for record ids, in a metadata database no command has touched
//! yet (no schema, no secret): gateways starting at once all read the one secret the
//! first of them made, a gateway started later reads it again, and another cluster has
//! another. Compared through the ids they derive: the secret itself is never shown.
//!
//! Against the metadata server `./setup.sh up` starts, in scratch databases of their own
//! (dropped at the end): `cargo test -p control-plane --test id_secret`, with the
//! environment of `eval "$(./setup.sh env)"`.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use control_plane::id_secret::{self, IdSecretReader};
use control_plane::map::meta;
use shard_manager::store::{IdSecret, IdempotencyKey, RecordId};
use shard_manager::ClusterSettings;
use test_support::scratch::MetaScratch;

/// A metadata database of its own, created empty; dropped with the guard.
async fn empty_metadata() -> (ClusterSettings, MetaScratch) {
    let scratch = MetaScratch::empty("sgtest_secret").await;
    (scratch.0.clone(), scratch)
}

/// The id a secret gives one request's first record.
fn id_with(secret: &IdSecret) -> RecordId {
    IdempotencyKey::new("caller", "key", &[b"write", b"orders", b"{}"], 60).record_id(secret, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_reads_the_one_secret_the_first_made() {
    let (settings, _scratch) = empty_metadata().await;
    // Four gateways asking at once, each on its own connection.
    let mut asking = Vec::new();
    for _ in 0..4 {
        let settings = settings.clone();
        asking.push(tokio::spawn(async move {
            let mut conn = meta::connect(&settings).await.expect("the metadata server");
            id_secret::read_or_make(&mut conn.client)
                .await
                .expect("the secret")
        }));
    }
    let mut ids = Vec::new();
    for ask in asking {
        ids.push(id_with(&ask.await.expect("a gateway")));
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");

    // One row, of 32 bytes.
    let conn = meta::connect(&settings).await.expect("the metadata server");
    let rows = conn
        .client
        .query("SELECT length(secret) FROM cluster_secrets", &[])
        .await
        .expect("the secrets' table");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 32);

    // A gateway started later (its start-up read, and its background reader) reads it
    // again.
    let later = id_secret::load_at_start(&settings)
        .await
        .expect("the secret");
    assert_eq!(id_with(&later), ids[0]);
    let slot = Arc::new(OnceLock::new());
    let _reader = IdSecretReader::spawn(slot.clone(), settings.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while slot.get().is_none() {
        assert!(Instant::now() < deadline, "the reader read nothing in 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(id_with(slot.get().expect("read")), ids[0]);

    // Another cluster (another metadata database): another secret, another id.
    let (other, _other_scratch) = empty_metadata().await;
    let theirs = id_secret::load_at_start(&other)
        .await
        .expect("their secret");
    assert_ne!(id_with(&theirs), ids[0]);
}
