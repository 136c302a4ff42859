//! Unit tests of `txn`: the names written into statements, a replay's entries, a
//! failed condition's detail.

use super::*;

#[test]
fn only_our_names_are_written_into_statements() {
    assert!(valid_gid("sg_0f3a_2"));
    assert!(!valid_gid("sg_x'; DROP TABLE records; --"));
    assert!(!valid_gid("other_1"));
    assert!(!valid_gid("sg_ABC"));
}

#[test]
fn a_replay_reads_the_entries_the_shard_kept() {
    let detail = r#"[{"table": "accounts", "shard_key": "a", "id": "1", "answer": {"version": 7, "created": true, "deleted": false}},
                    {"table": "accounts", "shard_key": "b", "id": "2", "answer": {"version": null, "created": false, "deleted": false}}]"#;
    let entries = replayed_detail(Some(detail)).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].id, "1");
    assert_eq!(entries[0].answer.version, Some(7));
    assert!(entries[0].answer.created);
    assert_eq!(entries[1].answer.version, None);
    assert!(replayed_detail(Some("17")).is_err());
    assert!(replayed_detail(None).is_err());
}

#[test]
fn a_failed_condition_names_the_operation_and_the_version() {
    assert_eq!(condition_detail(Some("3 17")).unwrap(), (3, 17));
    assert_eq!(condition_detail(Some("0 0")).unwrap(), (0, 0));
    assert!(condition_detail(Some("17")).is_err());
    assert!(condition_detail(None).is_err());
}
