//! A key's records listed through `Cluster`, newest first, a page at a time: each page
//! continues after the cursor of the one before, with no record twice and none missed,
//! and no record of another key or table on the same shard.

use serde_json::json;
use shard_manager::{Consistency, Cursor, ListQuery, Role, ShardId};

use crate::fixtures::{doc, id, key_on, table};
use test_support::scratch::Scratch;

#[tokio::test]
async fn pages_follow_their_cursors_across_a_keys_records_newest_first() {
    let scratch = Scratch::create().await;
    let cluster = scratch.cluster();
    let events = table(&cluster, "events");
    let shard = ShardId(0);
    let key = key_on(&cluster, shard, "carol");
    let other = key_on(&cluster, shard, "dave");
    for n in 1..=5 {
        let data = doc(json!({"n": n}));
        cluster
            .write(&events, &key, id(&format!("e{n}")), data, None)
            .await
            .expect("write");
    }
    // Same shard, another key; same key, another table: neither belongs to the list.
    cluster
        .write(&events, &other, id("e9"), doc(json!({"n": 9})), None)
        .await
        .expect("write another key's");
    let orders = table(&cluster, "orders");
    cluster
        .write(&orders, &key, id("o1"), doc(json!({"n": 0})), None)
        .await
        .expect("write another table's");

    let mut query = ListQuery {
        limit: 2,
        filter: None,
        after: None,
        max_bytes: 1 << 20,
    };
    let mut pages = Vec::new();
    loop {
        let page = cluster
            .list(&events, &key, &query, Consistency::Strong)
            .await
            .expect("list");
        assert_eq!((page.shard, page.role), (shard, Role::Primary));
        assert!(
            !page.value.cut,
            "a page of small records cut by the byte budget"
        );
        let records = page.value.records;
        assert!(records.iter().all(|r| r.shard_key == key.as_str()));
        assert!(records.iter().all(|r| r.table_name == "events"));
        for record in &records {
            let n: u64 = record.id[1..].parse().expect("e<n>");
            assert_eq!(record.data.to_value(), json!({"n": n}), "{}", record.id);
        }
        pages.push(records.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        match records.last() {
            Some(last) if records.len() == query.limit as usize => {
                query.after = Some(Cursor::after(last));
            }
            _ => break,
        }
        assert!(pages.len() <= 4, "the pages never end: {pages:?}");
    }
    assert_eq!(
        pages,
        vec![
            vec!["e5".to_string(), "e4".into()],
            vec!["e3".into(), "e2".into()],
            vec!["e1".into()],
        ]
    );

    let filtered = ListQuery {
        limit: 10,
        filter: Some(doc(json!({"n": 3})).into_raw()),
        after: None,
        max_bytes: 1 << 20,
    };
    let page = cluster
        .list(&events, &key, &filtered, Consistency::Strong)
        .await
        .expect("filtered list");
    let ids: Vec<&str> = page.value.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["e3"]);
}
