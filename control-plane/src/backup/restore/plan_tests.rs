//! Unit tests of the plan's pure parts (included by `plan.rs`).

use super::*;
use chrono::TimeZone;

fn target(stanza: &str, address: &str) -> Target {
    Target {
        stanza: stanza.into(),
        address: address.into(),
        holds_meta: false,
    }
}

#[test]
fn a_point_name_gives_its_time() {
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 17, 4, 33).unwrap();
    assert_eq!(time_of(&point::name_at(at)), Some(at));
    assert_eq!(time_of("sg_yesterday"), None);
    assert_eq!(time_of("nightly"), None);
}

#[test]
fn every_stanza_needs_a_data_directory_on_its_port() {
    let confs = conf::stanzas("[shard0]\npg1-path=/d/0\npg1-port=25432\n[meta]\npg1-port=25430\n");
    let ok = placed(&[target("shard0", "127.0.0.1:25432")], &confs).unwrap();
    assert_eq!(ok[0].data_dir, "/d/0");
    let err = placed(&[target("shard1", "127.0.0.1:25433")], &confs).unwrap_err();
    assert!(
        err.contains("stanza shard1 (127.0.0.1:25433): the stanza is missing"),
        "{err}"
    );
    let err = placed(&[target("meta", "127.0.0.1:25430")], &confs).unwrap_err();
    assert!(err.contains("no pg1-path"), "{err}");
    let err = placed(&[target("shard0", "127.0.0.1:25433")], &confs).unwrap_err();
    assert!(
        err.contains("port 25432, the map on 127.0.0.1:25433"),
        "{err}"
    );
}

#[test]
fn a_point_needs_a_backup_that_ended_before_it() {
    let info = serde_json::json!([
        {"name": "shard0", "status": {"code": 0, "message": "ok"},
         "backup": [{"label": "A", "timestamp": {"start": 90, "stop": 100}},
                    {"label": "B", "timestamp": {"start": 190, "stop": 200}}]},
        {"name": "meta", "status": {"code": 1, "message": "missing stanza path"}, "backup": []}
    ]);
    assert_eq!(backed_up_before(&info, "shard0", 100).as_deref(), Ok("A"));
    assert_eq!(backed_up_before(&info, "shard0", 150).as_deref(), Ok("A"));
    assert_eq!(backed_up_before(&info, "shard0", 250).as_deref(), Ok("B"));
    let err = backed_up_before(&info, "shard0", 99).unwrap_err();
    assert!(
        err.contains("no backup ended before the point (2 backup(s)"),
        "{err}"
    );
    let err = backed_up_before(&info, "meta", 500).unwrap_err();
    assert!(err.contains("missing stanza path"), "{err}");
    let err = backed_up_before(&info, "shard9", 500).unwrap_err();
    assert!(err.contains("does not know the stanza"), "{err}");
}
