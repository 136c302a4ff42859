//! `shard-admin export` as a user runs it, on databases of the test's own: the file
//! holds every record of the table once (NDJSON and CSV read back), the key prefix
//! keeps its keys only, and a refused command leaves `--out` as it was and no
//! temporary file behind.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use common::scratch::Scratch;
use common::{assert_refused, text};

fn records() -> Vec<(String, String, Value)> {
    (0..400)
        .map(|i| {
            let key = match i % 4 {
                0 => format!("eu,{}", i % 31),
                1 => format!("us \"{}\"", i % 29),
                _ => format!("eu-{}", i % 37),
            };
            (
                key,
                format!("r{i}\nline"),
                json!({"i": i, "text": "a,\"b\"\r\nc"}),
            )
        })
        .collect()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sg-export-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// RFC 4180 rows.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
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
    assert!(
        field.is_empty() && row.is_empty(),
        "the file ends with CRLF"
    );
    rows
}

type Records = HashMap<(String, String), Value>;

fn once(records: Vec<(String, String, Value)>) -> Records {
    let n = records.len();
    let map: Records = records.into_iter().map(|(k, i, d)| ((k, i), d)).collect();
    assert_eq!(map.len(), n, "a record written twice");
    map
}

fn read_ndjson(path: &Path) -> Records {
    let text = std::fs::read_to_string(path).unwrap();
    once(
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|r| {
                (
                    r["shard_key"].as_str().unwrap().to_owned(),
                    r["id"].as_str().unwrap().to_owned(),
                    r["data"].clone(),
                )
            })
            .collect(),
    )
}

fn read_csv(path: &Path) -> Records {
    let rows = csv_rows(&std::fs::read_to_string(path).unwrap());
    assert_eq!(
        rows[0],
        ["shard_key", "id", "version", "updated_at", "data"]
    );
    once(
        rows[1..]
            .iter()
            .map(|r| {
                (
                    r[0].clone(),
                    r[1].clone(),
                    serde_json::from_str(&r[4]).unwrap(),
                )
            })
            .collect(),
    )
}

/// Files in `dir` (a temporary file left behind would show).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn export_writes_every_record_once_as_ndjson_and_csv_and_refuses_bad_arguments() {
    let written = records();
    let scratch = Scratch::holding(&written);
    let dir = temp_dir();
    let expected = once(written.clone());

    let out = dir.join("users.ndjson");
    let run = scratch.output(&["export", "--table", "users", "--out", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let summary = text(&run.stdout);
    assert!(
        summary.starts_with("exported 400 records of table users"),
        "{summary}"
    );
    assert_eq!(read_ndjson(&out), expected);

    let csv = dir.join("users.csv");
    let args = [
        "export",
        "--table",
        "users",
        "--format",
        "csv",
        "--page-rows",
        "7",
        "--out",
        csv.to_str().unwrap(),
    ];
    let run = scratch.output(&args);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(read_csv(&csv), expected);

    // The key prefix: "eu," keeps "eu,3" and not "eu-3".
    let prefixed = dir.join("eu.csv");
    let args = [
        "export",
        "--table",
        "users",
        "--format",
        "csv",
        "--key-prefix",
        "eu,",
        "--out",
        prefixed.to_str().unwrap(),
    ];
    let run = scratch.output(&args);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let want: Records = expected
        .iter()
        .filter(|((k, _), _)| k.starts_with("eu,"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(want.len(), 100);
    assert_eq!(read_csv(&prefixed), want);

    // Refused: nothing read, `--out` as it was, nothing left beside it.
    std::fs::write(&out, "kept\n").unwrap();
    let before = files(&dir);
    let keep = out.to_str().unwrap();
    let missing_dir = dir.join("no/such/dir/x.csv");
    let refused: Vec<Vec<&str>> = vec![
        vec![
            "export", "--table", "users", "--format", "xml", "--out", keep,
        ],
        vec!["export", "--table", "nope", "--out", keep],
        vec![
            "export",
            "--table",
            "users",
            "--key-prefix",
            "",
            "--out",
            keep,
        ],
        vec![
            "export",
            "--table",
            "users",
            "--page-rows",
            "0",
            "--out",
            keep,
        ],
        vec!["export", "--table", "users", "--out", dir.to_str().unwrap()],
        vec![
            "export",
            "--table",
            "users",
            "--out",
            missing_dir.to_str().unwrap(),
        ],
    ];
    for args in refused {
        let (code, stderr) = scratch.run(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_refused(&args, &stderr);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept\n", "{args:?}");
        assert_eq!(files(&dir), before, "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys and ids that a spreadsheet would run as formulas, one per leading character.
fn formulas() -> Vec<(String, String, Value)> {
    ["=", "+", "-", "@", "\t", "\r"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                format!("{c}HYPERLINK(\"http://x\",\"k{i}\")"),
                format!("{c}id{i}"),
                json!({"n": -(i as i64), "f": format!("{c}1+1")}),
            )
        })
        .collect()
}

/// The cells of a CSV file as written (key, id), by row.
fn key_id_cells(path: &Path) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = csv_rows(&std::fs::read_to_string(path).unwrap())[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    rows.sort();
    rows
}

#[test]
fn csv_export_puts_a_quote_before_cells_that_start_like_formulas_unless_raw() {
    let written = formulas();
    let scratch = Scratch::holding(&written);
    let dir = temp_dir();
    let csv = |name: &str, raw: bool| {
        let out = dir.join(name);
        let mut args = vec![
            "export",
            "--table",
            "users",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ];
        if raw {
            args.push("--raw");
        }
        let run = scratch.output(&args);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        out
    };

    let safe = key_id_cells(&csv("safe.csv", false));
    let mut want: Vec<(String, String)> = written
        .iter()
        .map(|(k, i, _)| (format!("'{k}"), format!("'{i}")))
        .collect();
    want.sort();
    assert_eq!(safe, want);
    // The data cell is a JSON object: its negative numbers and "=1+1" stay as they are.
    let data = read_csv(&csv("data.csv", false));
    for (k, i, d) in &written {
        assert_eq!(data[&(format!("'{k}"), format!("'{i}"))], *d);
    }

    let raw = key_id_cells(&csv("raw.csv", true));
    let mut want: Vec<(String, String)> = written
        .iter()
        .map(|(k, i, _)| (k.clone(), i.clone()))
        .collect();
    want.sort();
    assert_eq!(raw, want);

    // NDJSON is the same with and without --raw: the values as stored.
    for raw in [false, true] {
        let out = dir.join(format!("users-{raw}.ndjson"));
        let mut args = vec!["export", "--table", "users", "--out", out.to_str().unwrap()];
        if raw {
            args.push("--raw");
        }
        let run = scratch.output(&args);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        assert_eq!(read_ndjson(&out), once(written.clone()));
    }

    let help = scratch.output(&["export", "--help"]);
    let help = text(&help.stdout);
    assert!(help.contains("--raw"), "{help}");
    assert!(help.contains("formula"), "{help}");
    let _ = std::fs::remove_dir_all(&dir);
}
