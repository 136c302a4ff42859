//! The local topology's set-up defaults: every connection needs a password, the gateway's
//! role is not a superuser, Redis answers nobody without its password and does not run as
//! root, and the generated credentials are private to their owner.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use diesel::{Connection, PgConnection, RunQueryDsl};
use shard_manager::servers::connection_url;
use test_app::test_settings;
use test_support::repo_root;

/// psql with no password from anywhere (no PGPASSWORD, no pgpass file).
fn psql_without_password(addr: &str, user: &str) -> std::process::Output {
    let (host, port) = addr.split_once(':').unwrap();
    Command::new("psql")
        .args([
            "-X", "-w", "-h", host, "-p", port, "-U", user, "-d", "postgres", "-c", "SELECT 1",
        ])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/dev/null")
        .output()
        .expect("run psql")
}

#[test]
fn no_database_login_works_without_a_password() {
    let settings = test_settings();
    let primary = &settings.cluster.shards[0].primary;
    let replica = &settings.cluster.shards[0].replicas[0];
    for addr in [primary, replica] {
        for user in ["postgres", settings.cluster.database.user.as_str()] {
            let out = psql_without_password(addr, user);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{user}@{addr} logged in without a password"
            );
            assert!(err.contains("password"), "{user}@{addr}: {err}");
        }
    }
}

#[test]
fn the_gateway_role_is_not_a_superuser() {
    let settings = test_settings();
    assert_eq!(settings.cluster.database.user, "shardgate");
    let mut db = settings.cluster.database.clone();
    db.dbname = "postgres".into();
    let mut conn =
        PgConnection::establish(&connection_url(&db, &settings.cluster.shards[0].primary))
            .expect("the gateway role logs in with its password");
    #[derive(diesel::QueryableByName)]
    struct Role {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        rolsuper: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        rolcreatedb: bool,
    }
    let role: Role = diesel::sql_query(
        "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(&mut conn)
    .unwrap();
    assert!(!role.rolsuper, "the gateway connects as a superuser");
    assert!(role.rolcreatedb, "tests create their own databases");
}

#[test]
fn redis_refuses_clients_without_the_password_and_does_not_run_as_root() {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "26379", "ping"])
        .env_remove("REDISCLI_AUTH")
        .output()
        .expect("run redis-cli");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("NOAUTH"),
        "ping without a password: {answer}"
    );

    let listeners = Command::new("ss")
        .args(["-Hltnp", "sport = :26379"])
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&listeners.stdout);
    let pid = text
        .split("pid=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .expect("a process listens on 26379");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap();
    assert_ne!(uid, "0", "Redis runs as root");
}

#[test]
fn the_generated_credentials_are_private() {
    let file = repo_root().join(".local/credentials.env");
    let mode = std::fs::metadata(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "{} has mode {:o}",
        file.display(),
        mode & 0o777
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("SHARDGATE__DATABASE__PASSWORD="));
}
