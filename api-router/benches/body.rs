//! What a single write's body costs in-process, from the bytes received to the document
//! ready to bind (no HTTP, no database): the number behind the write's JSON share in
//! docs/BENCHMARKS.md, too small to show in the end-to-end CPU figures' noise.
//!
//! - `write_body/as_text`: the path the gateway takes: the limits checked in one pass
//!   that builds nothing, the body typed with its document kept as text, the document
//!   checked (an object, no NUL) and its `id` member read.
//! - `write_body/as_tree`: the path it replaced, for comparison: the body built into a
//!   tree, typed from the tree, the document checked as a tree and serialised again for
//!   the `jsonb` parameter. (The old limit-checking parse counted every value as it
//!   built the tree; a plain tree parse stands in for it, so this is a lower bound.)
//!
//! The body is the CPU benchmark's write (`scripts/wrk-cpu.lua`, 167 bytes).
//!
//! Run with `cargo bench -p api-router --bench body`.

use std::hint::black_box;

use api_router::input::body::WriteRequest;
use api_router::input::json_limits::{self, JsonLimits};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::Value;
use shard_manager::{Document, RecordId};

const BODY: &[u8] = br#"{"table":"users","id":"rec_4242","data":{"user_id":"user_4242","name":"Anjali Mueller","email":"meaghan4242@example.net","tier":"pro","lifetime_value_cents":3141592}}"#;

const LIMITS: JsonLimits = JsonLimits {
    max_depth: 32,
    max_values: 100_000,
    counted_array: None,
};

/// The write body as the replaced path typed it: the document as a tree.
#[derive(serde::Deserialize)]
struct TreeWriteRequest {
    #[allow(dead_code)]
    table: String,
    id: Option<Value>,
    data: Value,
}

fn write_body(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_body");
    group.bench_function("as_text", |b| {
        b.iter(|| {
            json_limits::check(black_box(BODY), &LIMITS).unwrap();
            let req: WriteRequest = serde_json::from_slice(BODY).unwrap();
            let doc = Document::parse_raw(req.data).unwrap();
            let id = doc.derive_id(req.id.as_ref(), RecordId::generate).unwrap();
            black_box((doc.as_raw().get().len(), id))
        })
    });
    group.bench_function("as_tree", |b| {
        b.iter(|| {
            let tree: Value = serde_json::from_slice(black_box(BODY)).unwrap();
            let req: TreeWriteRequest = serde_json::from_value(tree).unwrap();
            // Document::parse checks the tree and serialises it for the parameter.
            let doc = Document::parse(req.data).unwrap();
            let id = doc.derive_id(req.id.as_ref(), RecordId::generate).unwrap();
            black_box((doc.as_raw().get().len(), id))
        })
    });
    group.finish();
}

criterion_group!(benches, write_body);
criterion_main!(benches);
