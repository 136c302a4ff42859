//! Pairs of keys that live on two shards, for `txn2` of `scripts/wrk-cpu.lua` (a
//! transaction over two shards): each key's shard located through the gateway
//! (`GET /api/shards/locate`), each paired with a key of another shard, the pairs
//! written to a file wrk's script reads (`PAIRS`).

use std::path::PathBuf;

use serde_json::Value;
use test_app::wrk::Bench;

/// The pairs of `user_0` .. `user_{keys-1}` and the file that holds them (one `a b`
/// line a pair, named for `tag` and the gateway's port; the caller removes it).
pub async fn write(bench: &Bench, keys: usize, tag: &str) -> (Vec<(usize, usize)>, PathBuf) {
    let client = reqwest::Client::new();
    let mut shard_of = Vec::with_capacity(keys);
    for n in 0..keys {
        let located: Value = client
            .get(bench.url(&format!("/api/shards/locate?key=user_{n}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        shard_of.push(located["shard"].as_u64().expect("locate names the shard"));
    }
    let pairs: Vec<(usize, usize)> = (0..keys)
        .filter_map(|n| {
            (1..keys)
                .map(|step| (n + step * 7) % keys)
                .find(|&m| shard_of[m] != shard_of[n])
                .map(|m| (n, m))
        })
        .collect();
    let file = std::env::temp_dir().join(format!("sg-{tag}-pairs-{}", bench.gateway.port));
    let text: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    std::fs::write(&file, text).unwrap();
    (pairs, file)
}
