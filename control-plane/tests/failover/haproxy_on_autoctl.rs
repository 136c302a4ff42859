//! The fixed addresses a gateway in `follow = "address"` mode is given, proven without
//! a gateway: a private pg_auto_failover formation behind a private HAProxy
//! (`private::haproxy`), whose checks read each node's role from its startup
//! parameters. Before the failure, `rw` leads to node 0 (the primary) only and `ro` to
//! node 1 (the standby). Node 0's whole machine dies (`kill -9` of its keeper and
//! PostgreSQL); nobody touches HAProxy. Within a bound, a new connection through `rw`
//! reaches node 1 and writes there, and `ro` sends nothing to node 0.
//!
//! Its ports: the formation in 26950-26979, HAProxy in 26980-26999, shared with
//! `behind_haproxy`, which may run at the same time: `free_port` never hands one port
//! to both (backup_cli's tests, which use them too, run after this suite).
//!
//! Skipped, loudly, only when pg_autoctl or HAProxy is not installed and
//! `SHARDGATE_REQUIRE_HA` is unset.

use std::time::{Duration, Instant};

use test_support::failover::{ha_shard, harness};
use test_support::private::autoctl::Formation;
use test_support::private::haproxy::{show, Haproxy, CHECK_USER};
use test_support::private::placement::Placement;

/// The formation's ports (monitor and nodes).
const FORMATION_PORTS: std::ops::Range<u16> = 26950..26980;
/// HAProxy's `rw` and `ro` ports.
const PROXY_PORTS: std::ops::Range<u16> = 26980..27000;

/// How long `rw` may take to lead to the promoted node after the kill: the monitor's
/// promotion (about 5 s with its checks cut to 1 s) plus HAProxy's checks (300 ms).
const FOLLOW_WITHIN: Duration = Duration::from_secs(30);

#[test]
fn haproxy_leads_rw_to_the_promoted_node_and_ro_away_from_the_dead_one() {
    let what = "HAProxy's role checks in front of pg_auto_failover";
    let Some(pg_autoctl) = ha_shard::pg_autoctl(what) else {
        return;
    };
    let Some(haproxy) = ha_shard::haproxy(what) else {
        return;
    };
    let _alone = harness::ONE_AT_A_TIME.blocking_lock();
    let t0 = Instant::now();
    let place = Placement {
        ports: FORMATION_PORTS,
        ..Placement::loopback()
    };
    let formation = Formation::start_with(pg_autoctl, "sg_app", "sgtest_haproxy", place, "");
    // Replicated to node 1: both nodes let the checks sign in.
    formation.query(0, "postgres", &format!("CREATE ROLE {CHECK_USER} LOGIN"));
    let proxy = Haproxy::start(
        &haproxy,
        [formation.addr(0), formation.addr(1)],
        PROXY_PORTS,
    );
    let [port0, port1] = formation.ports;
    // rw: the primary only; ro: the standby, and both nodes as backups. Every server
    // starts UP until its checks say otherwise (fall 2): waits for the verdicts.
    let before = [
        ("rw", "node0", "UP"),
        ("rw", "node1", "DOWN"),
        ("ro", "node0", "DOWN"),
        ("ro", "node1", "UP"),
        ("ro", "node0_any", "UP"),
        ("ro", "node1_any", "UP"),
    ];
    let took = proxy.wait_states(&before, Duration::from_secs(10));
    eprintln!(
        "[{:?}] formation and HAProxy up (rw {}, ro {}), servers checked in {took:?}:\n{}",
        t0.elapsed(),
        proxy.rw(),
        proxy.ro(),
        show(&proxy.states())
    );
    for (b, s, want) in before {
        assert_eq!(proxy.status(b, s), want, "{b}/{s} before the failure");
    }
    // The standby is refused for what it answers (not for a timeout): at once.
    let states = proxy.states();
    let node1 = states
        .iter()
        .find(|s| s.backend == "rw" && s.server == "node1");
    let refused = node1.map(|s| s.last_check.clone()).unwrap_or_default();
    assert!(
        refused.starts_with("L7RSP"),
        "rw/node1's last check: {refused}"
    );
    let ask = "SELECT pg_is_in_recovery(), inet_server_port()";
    assert_eq!(
        proxy.query(proxy.rw_port, "postgres", ask),
        format!("f|{port0}")
    );
    assert_eq!(
        proxy.query(proxy.ro_port, "postgres", ask),
        format!("t|{port1}")
    );

    // Node 0's machine dies; only the monitor acts.
    formation.kill_node(0);
    let followed = proxy.wait_states(
        &[
            ("rw", "node1", "UP"),
            ("rw", "node0", "DOWN"),
            ("ro", "node0", "DOWN"),
            ("ro", "node0_any", "DOWN"),
        ],
        FOLLOW_WITHIN,
    );
    eprintln!(
        "kill -9 of node 0's machine -> rw leads to node 1 after {followed:?}; after the failover:\n{}\n{}",
        formation.show_state(),
        show(&proxy.states())
    );

    // A fresh connection through rw reaches node 1, out of recovery, and writes there.
    assert_eq!(
        proxy.query(proxy.rw_port, "postgres", ask),
        format!("f|{port1}")
    );
    let wrote = proxy.query(
        proxy.rw_port,
        "postgres",
        "CREATE TABLE behind_rw (n int); INSERT INTO behind_rw VALUES (7); \
         SELECT n || '@' || inet_server_port() FROM behind_rw",
    );
    assert_eq!(wrote.lines().last(), Some(format!("7@{port1}").as_str()));
    assert_eq!(
        formation.query(1, "postgres", "SELECT n FROM behind_rw"),
        "7"
    );
    // ro has nothing of node 0 left: its reads go to node 1, through the backup.
    assert_eq!(proxy.status("ro", "node0"), "DOWN");
    assert_eq!(proxy.status("ro", "node0_any"), "DOWN");
    assert_eq!(proxy.status("ro", "node1_any"), "UP");
    assert_eq!(
        proxy.query(proxy.ro_port, "postgres", "SELECT inet_server_port()"),
        port1.to_string()
    );
}
