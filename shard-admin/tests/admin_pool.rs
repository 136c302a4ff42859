//! The admin commands' connection pool opens only the connections it is asked for.
//!
//! With r2d2's default (`min_idle` = `max_size`) a worker thread opened a second,
//! unused connection in the background. When a command such as `shard-admin migrate`
//! finished first, the process exited while that thread was inside libpq's TLS
//! handshake; OpenSSL's exit handlers freed what the thread was using, and the command
//! died of SIGSEGV after its work was done (10 runs in 100, measured). Checked here
//! against a real primary: after one connection is taken, and time for a background
//! one to open, the pool holds exactly one.

use std::time::Duration;

use shard_admin::admin_pool;
use shard_manager::servers::connection_url;
use shard_manager::{config, ClusterSettings};

#[test]
fn the_admin_pool_opens_only_the_connections_asked_for() {
    let settings: ClusterSettings = config::load(None).expect("configuration");
    let url = connection_url(&settings.database, &settings.shards[0].primary);
    let pool = admin_pool(url);
    let conn = pool.get().expect("a connection to shard 0's primary");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pool.state().connections, 1, "no connection opened unasked");
    drop(conn);
    assert_eq!(pool.state().idle_connections, 1);
}
