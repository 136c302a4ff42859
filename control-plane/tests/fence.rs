//! The cluster fence (`txn::fence`) is never left held by a reader that went away, on
//! the metadata server `./setup.sh up` starts, each test in a scratch database of its
//! own (dropped at the end): `cargo test -p control-plane --test fence`, with the
//! environment of `eval "$(./setup.sh env)"`.
//!
//! - a take dropped while it waits for the lock (the client hung up) leaves no lock
//!   behind once the lock's holder lets go;
//! - a holder that stops talking (a frozen gateway) loses the fence after the idle
//!   bound, without anyone's help;
//! - the fence session of a gateway that dropped out of the live list is ended by any
//!   gateway that still beats.

use std::time::Duration;

use control_plane::map::{gateways, meta, schema, Identity};
use control_plane::txn::fence::IDLE_BOUND;
use control_plane::txn::log::DECISION_FENCE_LOCK;
use control_plane::txn::MetaFence;
use shard_manager::cluster::snapshot::fence::CutFence;
use shard_manager::routing::MapVersion;
use shard_manager::ClusterSettings;
use test_support::scratch::MetaScratch;
use tokio_postgres::Client;

/// Settings whose metadata database is a new scratch one, made with the schema; and a
/// connection to it.
async fn scratch() -> (ClusterSettings, MetaScratch, Client) {
    let guard = MetaScratch::empty("sgtest_fence").await;
    let settings = guard.0.clone();
    let mut conn = meta::connect(&settings).await.expect("the metadata server");
    schema::apply(&mut conn.client).await.expect("the schema");
    (settings, guard, conn.client)
}

/// Sessions of this database holding the fence exclusive (a reader's take).
async fn holders(client: &Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND mode = 'ExclusiveLock' AND classid::bigint = ($1::bigint >> 32) \
             AND objid::bigint = ($1::bigint & 4294967295) AND objsubid = 1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&DECISION_FENCE_LOCK],
        )
        .await
        .expect("pg_locks")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_dropped_while_it_waits_leaves_no_lock_behind() {
    let (settings, _scratch, client) = scratch().await;
    let fence = MetaFence::new(settings.clone(), &uuid::Uuid::new_v4());
    // Opened once and released: the fence's connection is made.
    let held = fence.hold().await.expect("take the fence");
    held.release().await.expect("release it");

    // A decision being written holds it shared; the take waits, then is dropped.
    client
        .execute(
            "SELECT pg_advisory_lock_shared($1)",
            &[&DECISION_FENCE_LOCK],
        )
        .await
        .expect("hold the fence shared");
    let waited = tokio::time::timeout(Duration::from_millis(300), fence.hold()).await;
    assert!(waited.is_err(), "the take waited for the shared holder");
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .execute(
            "SELECT pg_advisory_unlock_shared($1)",
            &[&DECISION_FENCE_LOCK],
        )
        .await
        .expect("let it go");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(holders(&client).await, 0, "a dropped take holds the fence");

    // And the fence is taken again at once.
    let held = tokio::time::timeout(Duration::from_secs(2), fence.hold())
        .await
        .expect("taken within 2 s")
        .expect("take the fence again");
    assert_eq!(holders(&client).await, 1);
    held.release().await.expect("release it");
    assert_eq!(holders(&client).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_stops_talking_loses_the_fence_after_the_idle_bound() {
    let (settings, _scratch, client) = scratch().await;
    let fence = MetaFence::new(settings.clone(), &uuid::Uuid::new_v4());
    let held = fence.hold().await.expect("take the fence");
    assert_eq!(holders(&client).await, 1);
    // The holder says nothing more, as a gateway stopped by SIGSTOP would.
    tokio::time::sleep(IDLE_BOUND + Duration::from_secs(1)).await;
    assert_eq!(
        holders(&client).await,
        0,
        "the server ended the idle holder"
    );
    assert!(
        held.release().await.is_err(),
        "its release finds the session gone"
    );
    // The next reader takes it on a new connection.
    let held = fence.hold().await.expect("take the fence again");
    held.release().await.expect("release it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_session_of_a_gateway_no_longer_listed_is_ended() {
    let (settings, _scratch, client) = scratch().await;
    let gone = Identity::new("gone:1".into());
    let alive = Identity::new("alive:1".into());
    gateways::heartbeat(&client, &gone, MapVersion(0))
        .await
        .expect("list it");
    gateways::heartbeat(&client, &alive, MapVersion(0))
        .await
        .expect("list it");
    let gone_fence = MetaFence::new(settings.clone(), &gone.id);
    let alive_fence = MetaFence::new(settings.clone(), &alive.id);
    // The live gateway's fence connection is made and idle; the other holds the fence.
    alive_fence
        .hold()
        .await
        .expect("take")
        .release()
        .await
        .expect("release");
    let held = gone_fence.hold().await.expect("take the fence");
    assert_eq!(holders(&client).await, 1);
    // Nothing ended while both are listed.
    assert_eq!(
        gateways::end_fences_of_the_gone(&client, 60_000)
            .await
            .expect("look"),
        0
    );
    // The holder's gateway stops beating: out of the list after the TTL.
    client
        .execute(
            "UPDATE gateways SET seen_at = now() - interval '1 minute' WHERE id = $1::text::uuid",
            &[&gone.id.to_string()],
        )
        .await
        .expect("age it");
    let ended = gateways::end_fences_of_the_gone(&client, 10_000)
        .await
        .expect("end them");
    assert_eq!(ended, 1, "the gone gateway's fence session, and only it");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(holders(&client).await, 0, "the fence is free");
    assert!(held.release().await.is_err(), "its session was ended");
    // The live gateway's fence still works on its connection.
    alive_fence
        .hold()
        .await
        .expect("take")
        .release()
        .await
        .expect("release");
}
