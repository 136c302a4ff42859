//! The cache's version floors in the real Redis: `install.lua` and `forget.lua` run on
//! keys of their own, in the orders that gateways racing each other can produce. The
//! case that matters: a writer's install delayed past a later write's loss and replay
//! must not put its older version back (the replay may have been acknowledged).

use redis::aio::MultiplexedConnection;

use test_support::scratch::settings;

const INSTALL: &str = include_str!("../../src/cache/install.lua");
const FORGET: &str = include_str!("../../src/cache/forget.lua");
const TTL_MS: u64 = 60_000;

/// One record's value and floor keys, and the shard's retired-epoch marker.
struct Record {
    value: String,
    floor: String,
    retired: String,
}

impl Record {
    fn new() -> Self {
        let base = format!("sgtest-floors-{}", uuid::Uuid::new_v4().simple());
        Self {
            value: format!("{base}:v"),
            floor: format!("{base}:f"),
            retired: format!("{base}:retired"),
        }
    }

    /// `install.lua` as a writer ('w') or a reader ('r'): whether it installed.
    async fn install(&self, conn: &mut MultiplexedConnection, who: char, version: i64) -> bool {
        let done: i64 = redis::Script::new(INSTALL)
            .key(&self.value)
            .key(&self.floor)
            .key(&self.retired)
            .arg(version)
            .arg(format!("1|{{\"n\":{version}}}"))
            .arg(TTL_MS)
            .arg(TTL_MS)
            .arg(who.to_string())
            .arg(1)
            .invoke_async(conn)
            .await
            .expect("install.lua");
        done == 1
    }

    /// `forget.lua`: 'm' (may have committed), 'k' (committed as `version`), 'c'
    /// (committed, version unknown).
    async fn forget(&self, conn: &mut MultiplexedConnection, what: &str, version: i64) {
        let _: i64 = redis::Script::new(FORGET)
            .key(&self.value)
            .key(&self.floor)
            .arg(TTL_MS)
            .arg(what)
            .arg(version)
            .invoke_async(conn)
            .await
            .expect("forget.lua");
    }

    async fn floor(&self, conn: &mut MultiplexedConnection) -> Option<String> {
        redis::cmd("GET")
            .arg(&self.floor)
            .query_async(conn)
            .await
            .unwrap()
    }

    async fn cached(&self, conn: &mut MultiplexedConnection) -> Option<i64> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(&self.value)
            .query_async(conn)
            .await
            .unwrap();
        raw.map(|r| r.split('|').next().unwrap().parse().unwrap())
    }

    async fn drop_keys(&self, conn: &mut MultiplexedConnection) {
        let _: () = redis::cmd("DEL")
            .arg(&self.value)
            .arg(&self.floor)
            .query_async(conn)
            .await
            .unwrap();
    }
}

async fn redis() -> MultiplexedConnection {
    let url = settings().cache.url;
    redis::Client::open(url.as_str())
        .expect("the cache URL")
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers (./setup.sh up)")
}

#[tokio::test]
async fn a_late_install_of_an_older_commit_stays_out_after_a_replay() {
    let mut conn = redis().await;
    let r = Record::new();
    assert!(r.install(&mut conn, 'w', 3).await);
    // Version 5 commits, but its writer's install is delayed. Version 10 commits, its
    // connection is lost (forgotten), and its retry is answered by a replay, which
    // acknowledges version 10.
    r.forget(&mut conn, "m", 0).await;
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("u3"));
    r.forget(&mut conn, "k", 10).await;
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("u10"));
    assert_eq!(
        r.cached(&mut conn).await,
        None,
        "the replay dropped the value"
    );
    // The delayed install of version 5 now arrives: it must not come back.
    assert!(
        !r.install(&mut conn, 'w', 5).await,
        "an older commit came back"
    );
    assert!(
        !r.install(&mut conn, 'w', 10).await,
        "the replayed version itself"
    );
    // Readers install nothing while the floor is unknown (what they read may be older).
    assert!(!r.install(&mut conn, 'r', 10).await);
    assert!(!r.install(&mut conn, 'r', 11).await);
    // A later writer caches the record again, and readers follow its floor.
    assert!(r.install(&mut conn, 'w', 12).await);
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("12"));
    assert!(!r.install(&mut conn, 'r', 11).await);
    assert!(r.install(&mut conn, 'r', 13).await);
    assert_eq!(r.cached(&mut conn).await, Some(13));
    r.drop_keys(&mut conn).await;
}

#[tokio::test]
async fn a_lost_write_keeps_the_floor_it_found() {
    let mut conn = redis().await;
    let r = Record::new();
    assert!(r.install(&mut conn, 'w', 7).await);
    // An acknowledged version 7, then a write whose connection was lost: a late install
    // of anything at or below 7 stays out, a newer writer goes in.
    r.forget(&mut conn, "m", 0).await;
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("u7"));
    assert!(!r.install(&mut conn, 'w', 6).await);
    assert!(!r.install(&mut conn, 'w', 7).await);
    assert!(r.install(&mut conn, 'w', 8).await);
    // A replay with an older version than the floor leaves the floor where it is.
    r.forget(&mut conn, "k", 4).await;
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("u8"));
    // With no floor at all, a lost write lets any later writer in.
    let fresh = Record::new();
    fresh.forget(&mut conn, "m", 0).await;
    assert_eq!(fresh.floor(&mut conn).await.as_deref(), Some("u-1"));
    assert!(!fresh.install(&mut conn, 'r', 1).await);
    assert!(fresh.install(&mut conn, 'w', 1).await);
    r.drop_keys(&mut conn).await;
    fresh.drop_keys(&mut conn).await;
}

#[tokio::test]
async fn a_replay_whose_version_is_unknown_keeps_every_install_out() {
    let mut conn = redis().await;
    let r = Record::new();
    assert!(r.install(&mut conn, 'w', 2).await);
    r.forget(&mut conn, "c", 0).await;
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("u"));
    assert!(!r.install(&mut conn, 'w', 1_000).await);
    assert!(!r.install(&mut conn, 'r', 1_000).await);
    // Floors only rise: a later lost write or a known replay keeps it unknown.
    r.forget(&mut conn, "m", 0).await;
    r.forget(&mut conn, "k", 50).await;
    assert_eq!(r.floor(&mut conn).await.as_deref(), Some("u"));
    r.drop_keys(&mut conn).await;
}
