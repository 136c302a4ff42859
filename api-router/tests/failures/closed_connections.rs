//! A pooled connection the server closed costs no write an error, however soon after
//! its last use the next write comes.
//!
//! Single writes go on the gateway's own wire connections (`shard_manager::wire`), which
//! have no driver task watching the socket. A connection used within the last 100 ms is
//! not checked with a query before a write (see `servers::write`), so what stands
//! between a closed connection and a write sent into it (answered 503, "may have
//! committed") is the pool's own check: a non-blocking read that finds the server's
//! goodbye or the closed socket.
//!
//! - `connections_closed_by_the_server_cost_no_write_an_error`: 8 concurrent writes open
//!   connections on both HTTP workers; the primary terminates every one of them; the next
//!   8 concurrent writes, sent as soon as the primary shows those gone, all succeed.
//!   Five rounds.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::future::join_all;
use reqwest::StatusCode;
use shard_manager::servers::connection_url;
use test_app::{prepare_database, test_settings};
use test_support::outage::{serial, DropDatabase};

use crate::support::{keys_on, Gateway};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// Terminates the gateway's connections to `dbname`; returns their process ids.
fn terminate_gateway_connections(conn: &mut PgConnection, dbname: &str) -> Vec<i32> {
    diesel::sql_query(
        // OFFSET 0 keeps the filter inside: pg_terminate_backend runs on these rows only.
        "SELECT pid FROM (SELECT pid FROM pg_stat_activity WHERE datname = $1 \
         AND application_name = 'shardgate' AND pid <> pg_backend_pid() OFFSET 0) mine \
         WHERE pg_terminate_backend(pid)",
    )
    .bind::<diesel::sql_types::Text, _>(dbname)
    .load::<Pid>(conn)
    .expect("terminate")
    .into_iter()
    .map(|p| p.pid)
    .collect()
}

/// How many of `pids` still run (a terminated backend takes a moment to exit).
fn still_running(conn: &mut PgConnection, pids: &[i32]) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = ANY($1)")
        .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(pids)
        .get_result::<Count>(conn)
        .expect("pg_stat_activity")
        .n
}

#[tokio::test]
async fn connections_closed_by_the_server_cost_no_write_an_error() {
    let _serial = serial().await;
    let mut settings = test_settings();
    prepare_database(&mut settings).await;
    let dbname = settings.cluster.database.dbname.clone();
    let _db = DropDatabase(dbname.clone());
    let shard = 1;
    let primary = connection_url(
        &settings.cluster.database,
        &settings.cluster.shards[shard].primary,
    );
    let keys = keys_on(&settings, shard, 8);
    let gateway = Gateway::start(settings).await;
    let mut admin = PgConnection::establish(&primary).expect("connect to the primary");
    let write_all = async || {
        let answers = join_all(keys.iter().map(|k| gateway.write(k, k))).await;
        let mut statuses = Vec::new();
        for res in answers {
            let status = res.status();
            let body = res.text().await.unwrap();
            statuses.push((status, body));
        }
        statuses
    };

    for (status, body) in write_all().await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for round in 0..5 {
        let closed = terminate_gateway_connections(&mut admin, &dbname);
        assert!(
            !closed.is_empty(),
            "round {round}: the gateway had no connection"
        );
        let started = Instant::now();
        while still_running(&mut admin, &closed) > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "round {round}: terminated connections still there"
            );
        }
        for (status, body) in write_all().await {
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        }
    }
}
