//! A real PostgreSQL whose messages are in German classifies like one in English: what
//! the gateway does about a refusal follows its SQLSTATE (`shard_manager::error::sqlstate`),
//! never its text, which changes with the server's `lc_messages`.
//!
//! The shared cluster's servers speak English and stay that way: this test starts a
//! private server of its own (test-support's [`LocalizedServer`]) with
//! `lc_messages = de_DE.UTF-8`, its locale compiled into a temporary directory, so
//! nothing is installed system-wide.
//! It touches nothing shared and runs without the cluster lock:
//! `cargo test -p shard-manager --test german_messages`.
//!
//! Each refusal is checked twice: on a bare wire connection, to show the server really
//! worded it in German (and what its SQLSTATE is), and through [`Server`], the request
//! path's one mapping to a [`ClusterError`].

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use shard_manager::config::{DatabaseSettings, SslMode};
use shard_manager::servers::Server;
use shard_manager::store::{NewRecord, RawJson};
use shard_manager::wire::write::upsert::upsert;
use shard_manager::wire::{self, connect, GroupEnd, Target, WireConn, WireError};
use shard_manager::{ClusterError, Role, ShardId};
use test_support::private::localized::LocalizedServer;
use test_support::scratch::migrate_database;

/// The map version the private shard is told, and the one slot it owns.
const TOLD: u64 = 7;
const OWNED: i32 = 17;
const NOT_OWNED: i32 = 18;

fn settings(statement_timeout_ms: u64) -> DatabaseSettings {
    DatabaseSettings {
        user: "postgres".into(),
        password: SecretString::from(String::new()),
        dbname: "postgres".into(),
        connect_timeout_ms: 5_000,
        statement_timeout_ms,
        txn_lock_timeout_ms: 2000,
        pool_max_size: 2,
        pool_wait_timeout_ms: 5_000,
        batch_point_reads: true,
        batch_writes: true,
        pool_threads: 1,
        allow_insecure_auth: false,
        sslmode: SslMode::Disable,
        ssl_root_cert: None,
    }
}

async fn bare(db: &DatabaseSettings, addr: &str) -> WireConn {
    connect(&Target::new(db, addr))
        .await
        .expect("sign in to the private server")
}

/// The server's refusal on a bare connection: (SQLSTATE, message).
fn refusal<T: std::fmt::Debug>(result: Result<T, WireError>) -> (String, String) {
    match result {
        Err(WireError::Server(e)) => (e.code.clone(), e.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The server's refusal of the one write of a group on a bare connection: (SQLSTATE,
/// message).
fn group_refusal(ended: Result<GroupEnd, WireError>) -> (String, String) {
    match ended {
        Ok(GroupEnd::Refused {
            index: 0,
            error: WireError::Server(e),
        }) => (e.code.clone(), e.message.clone()),
        other => panic!("expected the write refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_in_german_are_classified_by_their_sqlstate() {
    let pg = LocalizedServer::start("de_DE");
    let addr = pg.addr();
    let db = settings(5_000);
    let shard = ShardId(0);
    let server = Arc::new(
        Server::new(shard, Role::Primary, &addr, &db, Duration::from_secs(1)).expect("a server"),
    );

    let mut conn = bare(&db, &addr).await;
    let shown = conn
        .query_text("lc_messages", &["SHOW lc_messages"])
        .await
        .expect("SHOW lc_messages");
    assert_eq!(shown[0][0][0].as_deref(), Some("de_DE.UTF-8"));

    // No schema yet: the records table does not exist (42P01), worded in German.
    let (code, message) = refusal(wire::find(&mut conn, "things", ("k", OWNED), "a").await);
    assert_eq!(code, "42P01", "{message}");
    assert!(message.contains("existiert nicht"), "not German: {message}");
    let found = server
        .run(async |c| wire::find(c, "things", ("k", OWNED), "a").await)
        .await;
    assert!(
        matches!(found, Err(ClusterError::SchemaMissing { .. })),
        "{found:?}"
    );

    // Any other refusal keeps its SQLSTATE and the server's German words, for people.
    let (code, message) = refusal(conn.query_text("cast", &["SELECT 'x'::int"]).await);
    assert_eq!(code, "22P02");
    assert!(
        message.contains("ungültige Eingabesyntax"),
        "not German: {message}"
    );
    match server
        .run(async |c| c.query_text("cast", &["SELECT 'x'::int"]).await)
        .await
    {
        Err(ClusterError::Query {
            sqlstate,
            statement,
            message,
            ..
        }) => {
            assert_eq!((sqlstate.as_str(), statement), ("22P02", "cast"));
            assert!(message.contains("ungültige Eingabesyntax"), "{message}");
        }
        other => panic!("expected a query failure, got {other:?}"),
    }

    // The schema, then the shard is told map v7 and owns one slot.
    migrate_database(&db, &addr).await;
    let mut conn = bare(&db, &addr).await;
    conn.query_text(
        "tell",
        &[&format!(
            "INSERT INTO shardgate_map (shard, version) VALUES (0, {TOLD}); \
             INSERT INTO shardgate_slots (slot, since) VALUES ({OWNED}, {TOLD})"
        )],
    )
    .await
    .expect("tell the shard its slot");
    let data = RawJson::from_value(&serde_json::json!({"n": 1}));
    let record = |slot| NewRecord {
        table_name: "things",
        shard_key: "k",
        id: "a",
        slot,
        data: &data,
    };
    let written = server
        .write_in_group(upsert(&record(OWNED)).expect("encoded"))
        .await
        .expect("a write of an owned slot");
    assert_eq!(written.0.version, 1);

    // The shard's own refusal of a slot (SG001): the version it goes by is its DETAIL.
    let (code, _) = refusal(wire::find(&mut conn, "things", ("k", NOT_OWNED), "a").await);
    assert_eq!(code, "SG001");
    let refused = server
        .run(async |c| wire::find(c, "things", ("k", NOT_OWNED), "a").await)
        .await;
    match &refused {
        Err(e @ ClusterError::NotOwner { slots, told, .. }) => {
            assert_eq!((slots.as_str(), *told), ("18", TOLD));
            assert_eq!(e.sqlstate(), Some("SG001"));
        }
        other => panic!("expected the shard's refusal, got {other:?}"),
    }

    // A statement past statement_timeout (57014) is a timeout, not a failure of the server.
    let quick = settings(300);
    let mut short = bare(&quick, &addr).await;
    let (code, message) = refusal(short.query_text("sleep", &["SELECT pg_sleep(3)"]).await);
    assert_eq!(code, "57014");
    assert!(
        message.contains("Zeitüberschreitung"),
        "not German: {message}"
    );
    let impatient =
        Server::new(shard, Role::Primary, &addr, &quick, Duration::from_secs(1)).expect("a server");
    let slept = impatient
        .run(async |c| c.query_text("sleep", &["SELECT pg_sleep(3)"]).await)
        .await;
    assert!(
        matches!(slept, Err(ClusterError::Timeout { after_ms: 300, .. })),
        "{slept:?}"
    );
    assert!(impatient.is_eligible(), "a timeout does not ban the server");

    // A primary demoted to read-only (25006): nothing written, and told apart from down.
    conn.query_text(
        "demote",
        &["ALTER DATABASE postgres SET default_transaction_read_only = on"],
    )
    .await
    .expect("make new sessions read-only");
    let mut demoted = bare(&db, &addr).await;
    let write = upsert(&record(OWNED)).expect("encoded");
    let (code, message) =
        group_refusal(wire::commit_group(&mut demoted, &[write.framed()], None).await);
    assert_eq!(code, "25006");
    assert!(
        message.contains("Read-Only-Transaktion"),
        "not German: {message}"
    );
    let replica_now = Arc::new(
        Server::new(shard, Role::Primary, &addr, &db, Duration::from_secs(1)).expect("a server"),
    );
    let failed = replica_now
        .write_in_group(upsert(&record(OWNED)).expect("encoded"))
        .await
        .expect_err("a write to a read-only primary");
    assert!(!failed.maybe_committed);
    match &failed.error {
        e @ ClusterError::ReadOnly { server, .. } => {
            assert_eq!(server, &addr);
            assert_eq!(e.sqlstate(), Some("25006"));
        }
        other => panic!("expected read-only, got {other:?}"),
    }
}
