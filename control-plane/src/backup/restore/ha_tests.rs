//! Unit tests of the HA restore's pure parts (included by `ha.rs`).

use super::*;
use crate::backup::restore::conf;

fn argv(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

#[test]
fn the_refusal_names_what_runs_and_the_three_steps() {
    let why = refusal(
        &[
            "its monitor answers on 127.0.0.1:25420".into(),
            "the keeper of /d/n runs, pid 7".into(),
        ],
        "sg_20261126T010203Z",
    );
    assert!(
        why.starts_with("this cluster's shards are run by an HA manager, which runs (its monitor answers on 127.0.0.1:25420; the keeper of /d/n runs, pid 7): stop the HA manager first: ./setup.sh down (the monitor and every keeper; the data is kept)"),
        "{why}"
    );
    assert!(
        why.contains(
            "then `shard-admin restore --point sg_20261126T010203Z --yes`, then `./setup.sh up`"
        ),
        "{why}"
    );
    assert!(why.ends_with("nothing was changed"), "{why}");
}

#[test]
fn the_monitor_is_checked_on_its_url_s_host_and_port() {
    let url = "postgres://autoctl_node:pw@127.0.0.1:25420/pg_auto_failover?sslmode=disable";
    assert_eq!(monitor_address(url).as_deref(), Some("127.0.0.1:25420"));
    assert_eq!(
        monitor_address("postgres://autoctl_node@db.example/pg_auto_failover").as_deref(),
        Some("db.example:5432")
    );
    assert_eq!(
        monitor_address("host=::1 port=6000 dbname=m").as_deref(),
        Some("[::1]:6000")
    );
    assert_eq!(monitor_address("host=/run/postgresql dbname=m"), None);
    assert_eq!(monitor_address("not a url at all ="), None);
}

#[test]
fn a_keeper_is_pg_autoctl_run_and_names_its_data_directory() {
    let k = argv("pg_autoctl run --pgdata /d/shard0-primary");
    assert_eq!(keeper_pgdata(&k), Some("/d/shard0-primary"));
    let k = argv("/usr/bin/pg_autoctl run --pgdata=/d/m");
    assert_eq!(keeper_pgdata(&k), Some("/d/m"));
    // A keeper's children renamed themselves; other programs; other pg_autoctl commands.
    assert_eq!(keeper_pgdata(&argv("pg_autoctl: node active")), None);
    assert_eq!(keeper_pgdata(&argv("postgres -D /d/shard0-primary")), None);
    let show = argv("pg_autoctl show state --pgdata /d/m");
    assert_eq!(keeper_pgdata(&show), None);
    assert_eq!(keeper_pgdata(&[]), None);
}

#[test]
fn a_shard_is_restored_into_its_first_node_whichever_node_the_map_names() {
    let confs = conf::stanzas(
        "[shard0]\npg1-path=/d/p0\npg1-port=25432\npg2-path=/d/r0\npg2-port=25532\n\
         [meta]\npg1-path=/d/meta\npg1-port=25430\n",
    );
    let c = &confs["shard0"];
    assert_eq!(
        first_node("127.0.0.1:25432", c),
        None,
        "the first node already"
    );
    assert_eq!(
        first_node("127.0.0.1:25532", c).as_deref(),
        Some("127.0.0.1:25432"),
        "after a failover"
    );
    assert_eq!(
        first_node("127.0.0.1:25999", c),
        None,
        "no node of it: placed() refuses"
    );
    let t = |stanza: &str, address: &str| Target {
        stanza: stanza.into(),
        address: address.into(),
        holds_meta: stanza == "meta",
    };
    let moved = first_nodes(
        vec![t("shard0", "127.0.0.1:25532"), t("meta", "127.0.0.1:25430")],
        &confs,
    );
    assert_eq!(moved[0].address, "127.0.0.1:25432");
    assert_eq!(moved[1].address, "127.0.0.1:25430");
    let mut paths = node_paths(&confs);
    paths.sort();
    assert_eq!(paths, ["/d/meta", "/d/p0", "/d/r0"]);
}

#[test]
fn the_first_node_starts_on_its_port_without_a_synchronous_standby() {
    assert_eq!(
        postgres_options(25432),
        "-p 25432 -c synchronous_standby_names=''"
    );
}
