//! The wire client on its own, against a real primary and replica: it signs in over
//! plain TCP (`sslmode = disable`, as `./setup.sh up` runs the servers), runs the point
//! read and the list on rows written in plain SQL and decodes every column, reads the
//! applied migrations and the replay position; a statement past `statement_timeout` is
//! cancelled by the server (SQLSTATE 57014), which a `Server` answers as a timeout.

use std::time::{Duration, Instant};

use serde_json::json;
use shard_manager::config::SslMode;
use shard_manager::servers::Server;
use shard_manager::store::migrations;
use shard_manager::wire::{self, upkeep, Target, WireError};
use shard_manager::{ClusterError, Cursor, ListQuery, Role, ShardId};

use crate::fixtures::key_on;
use test_support::scratch::{self, Scratch};

#[tokio::test]
async fn the_wire_client_signs_in_without_tls_and_reads_what_sql_wrote() {
    let scratch = Scratch::create().await;
    let db = &scratch.settings.database;
    assert_eq!(db.sslmode, SslMode::Disable);
    let shard = ShardId(0);
    let key = key_on(&scratch.cluster(), shard, "judy");
    let (key, slot) = (key.as_str(), key.slot().0 as i32);
    let primary = scratch.primary(shard);
    let sql = scratch.connect(&primary).await;
    for (n, age) in [(1, 30), (2, 20), (3, 10)] {
        sql.execute(
            "INSERT INTO records (table_name, shard_key, id, slot, data, updated_at)
             VALUES ('events', $1, $2, $3, $4::text::jsonb, now() - make_interval(secs => $5))",
            &[
                &key,
                &format!("e{n}"),
                &slot,
                &json!({"n": n}).to_string(),
                &(age as f64),
            ],
        )
        .await
        .expect("insert");
    }
    let version: i64 = sql
        .query_one("SELECT version FROM records WHERE id = 'e2'", &[])
        .await
        .expect("e2's version")
        .get(0);

    let mut conn = wire::connect(&Target::new(db, &primary))
        .await
        .expect("connect");
    let found = wire::find(&mut conn, "events", (key, slot), "e2")
        .await
        .expect("find")
        .expect("e2 is there");
    assert_eq!(
        (
            found.table_name.as_str(),
            found.shard_key.as_str(),
            found.id.as_str()
        ),
        ("events", key, "e2")
    );
    assert_eq!((found.slot, found.version), (slot, version));
    assert_eq!(found.data.to_value(), json!({"n": 2}));
    let set_back = found.created_at - found.updated_at;
    assert_eq!(
        set_back.num_milliseconds(),
        20_000,
        "updated_at as inserted"
    );
    let missing = wire::find(&mut conn, "events", (key, slot), "e9").await;
    assert!(missing.expect("find a missing id").is_none());

    let mut query = ListQuery {
        limit: 2,
        filter: None,
        after: None,
        max_bytes: 1 << 20,
    };
    let page = wire::list(&mut conn, "events", Some((key, slot)), &query)
        .await
        .expect("list");
    let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["e3", "e2"]);
    query.after = Some(Cursor::after(&page.records[1]));
    let rest = wire::list(&mut conn, "events", Some((key, slot)), &query)
        .await
        .expect("the next page");
    let ids: Vec<&str> = rest.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["e1"]);

    let applied = upkeep::applied_migrations(&mut conn)
        .await
        .expect("migrations");
    let expected: Vec<String> = migrations::expected()
        .into_iter()
        .map(|m| m.version)
        .collect();
    let mut applied_sorted = applied.clone();
    applied_sorted.sort();
    assert_eq!(applied_sorted, expected);
    // A primary that never recovered says NULL; one that went through recovery (a
    // promoted standby, or under the HA manager a node restarted by its keeper) keeps
    // the last position it replayed. The wire client decodes what SQL says.
    let by_sql: Option<String> = sql
        .query_one("SELECT pg_last_wal_replay_lsn()::text", &[])
        .await
        .expect("replay position in SQL")
        .get(0);
    assert_eq!(
        wire::replay_wal(&mut conn).await.expect("replay"),
        by_sql,
        "a primary"
    );

    let mut replica = wire::connect(&Target::new(db, &scratch.replica(shard)))
        .await
        .expect("connect to the replica");
    let replayed = wire::replay_wal(&mut replica).await.expect("replay");
    assert!(
        replayed
            .as_deref()
            .and_then(shard_manager::Lsn::parse)
            .is_some(),
        "{replayed:?}"
    );
}

#[tokio::test]
async fn a_statement_past_its_timeout_is_refused_with_57014_and_answered_as_a_timeout() {
    // No scratch database needed: the statement reads nothing.
    let mut db = scratch::settings().database;
    db.dbname = "postgres".into();
    db.statement_timeout_ms = 200;
    let addr = scratch::settings().shards[0].primary.clone();
    let mut conn = wire::connect(&Target::new(&db, &addr))
        .await
        .expect("connect");

    let started = Instant::now();
    let err = conn
        .query_text("sleep", &["SELECT pg_sleep(5)"])
        .await
        .expect_err("a statement past the timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &err {
        WireError::Server(refusal) => {
            assert_eq!(refusal.code, "57014");
            assert_eq!(refusal.statement, Some("sleep"));
        }
        other => panic!("expected the server's refusal, got {other:?}"),
    }
    let one = conn
        .query_text("one", &["SELECT 1"])
        .await
        .expect("still usable");
    assert_eq!(one, vec![vec![vec![Some("1".to_string())]]]);

    let server = Server::new(
        ShardId(0),
        Role::Primary,
        &addr,
        &db,
        Duration::from_secs(5),
    )
    .expect("a server");
    let err = server
        .run(async |conn| conn.query_text("sleep", &["SELECT pg_sleep(5)"]).await)
        .await
        .expect_err("a statement past the timeout");
    match &err {
        ClusterError::Timeout {
            shard,
            role,
            server: at,
            after_ms,
        } => {
            assert_eq!(
                (*shard, *role, at.as_str()),
                (ShardId(0), Role::Primary, addr.as_str())
            );
            assert_eq!(*after_ms, 200);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(server.is_eligible());
    assert!(
        server.stats().condition.down_reason.is_none(),
        "a timeout is not a server down"
    );
}

/// A query's page is asked of the server in batches that stop at its byte budget, as a
/// list's is: the server produces only the rows the budget can take (and a batch's
/// worth past it), never the whole `limit`. Counted on the server itself: each row it
/// produces draws from a sequence. Before, it produced every row up to the limit, and
/// the gateway dropped what passed the budget as the rows arrived.
#[tokio::test]
async fn a_query_page_stops_the_server_at_its_byte_budget() {
    use shard_manager::store::page::FIRST_ROWS;
    use shard_manager::store::query_statement::QueryStatement;

    let scratch = Scratch::create().await;
    let db = &scratch.settings.database;
    let primary = scratch.primary(ShardId(0));
    let sql = scratch.connect(&primary).await;
    sql.batch_execute("CREATE SEQUENCE produced").await.unwrap();
    // 1,000 rows of 100 kB each, in the columns a page row has (no sort fields).
    let statement = QueryStatement {
        sql: "SELECT 'events', 'k', g::text, 0, jsonb_build_object('pad', repeat('x', 100000)), \
              nextval('produced'), now(), now() FROM generate_series(1, 1000) AS g"
            .into(),
        binds: Vec::new(),
    };
    let mut conn = wire::connect(&Target::new(db, &primary))
        .await
        .expect("connect");
    let budget = 1 << 20;
    let page = wire::query::query_page(&mut conn, &statement, 0, budget)
        .await
        .expect("a page");
    assert!(page.cut, "stopped for its budget");
    assert!(
        (10..=11).contains(&page.rows.len()),
        "a 1 MiB budget takes about ten rows of 100 kB: {}",
        page.rows.len()
    );
    let produced: i64 = sql
        .query_one("SELECT last_value FROM produced", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        produced <= i64::from(FIRST_ROWS) + 1,
        "the server produced {produced} rows for a page of {}",
        page.rows.len()
    );
    // The connection is left ready for the next exchange.
    let again = wire::query::query_page(&mut conn, &statement, 0, budget)
        .await
        .expect("a second page on the same connection");
    assert_eq!(again.rows.len(), page.rows.len());
}
