//! The export's two formats read back, for the export tests: NDJSON (records, then
//! the `end` line) and CSV (RFC 4180 quoting: commas, quotes and line breaks), each
//! record as (key, id, data).

use std::collections::HashMap;

use serde_json::Value;

/// An NDJSON body: its records (key, id) → data, and its last line.
pub fn ndjson(body: &str) -> (Vec<(String, String, Value)>, Value) {
    let mut lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let last = lines.pop().expect("a last line");
    let records = lines
        .into_iter()
        .map(|r| {
            assert!(r["version"].as_i64().unwrap() > 0, "{r}");
            assert!(r["updated_at"].as_str().unwrap().ends_with('Z'), "{r}");
            (
                r["shard_key"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
                r["data"].clone(),
            )
        })
        .collect();
    (records, last)
}

/// RFC 4180 rows (quoted fields may hold commas, quotes and line breaks).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "the CSV ends with CRLF");
    rows
}

/// A CSV body's records (key, id) → data, after checking its header.
pub fn csv(body: &str) -> Vec<(String, String, Value)> {
    let rows = csv_rows(body);
    assert_eq!(
        rows[0],
        ["shard_key", "id", "version", "updated_at", "data"]
    );
    rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 5, "{r:?}");
            assert!(r[2].parse::<i64>().unwrap() > 0);
            (
                r[0].clone(),
                r[1].clone(),
                serde_json::from_str(&r[4]).expect("data is JSON"),
            )
        })
        .collect()
}

/// Each (key, id) once, and what it holds.
pub fn by_identity(records: Vec<(String, String, Value)>) -> HashMap<(String, String), Value> {
    let n = records.len();
    let map: HashMap<_, _> = records.into_iter().map(|(k, i, d)| ((k, i), d)).collect();
    assert_eq!(map.len(), n, "a record exported twice");
    map
}
