//! Requests made from the OpenAPI document: for every operation, valid ones (required
//! parameters only, all of them, random subsets) built from the documented examples,
//! enums and types, and mutated ones (a parameter missing, empty, of the wrong type,
//! huge, with NUL or odd bytes, duplicated; bodies malformed, mistyped, of the wrong
//! content type, a foreign `Host`); and every path with the methods it does not document.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::bodies::{body_cases, request_body};
use super::case::{Case, Expect, Known};
use super::schema::resolve;

/// Query values that are hostile in some way, already percent-encoded.
const ODD_QUERY: &[(&str, &str)] = &[
    ("empty", ""),
    ("NUL", "a%00b"),
    ("only NUL", "%00"),
    ("not UTF-8", "%FF%FE"),
    ("bad escape", "%zz"),
    ("unicode", "%D0%BA%D0%BB%D1%8E%D1%87%E2%9C%93"),
    ("negative", "-1"),
    ("huge number", "99999999999999999999999"),
    ("float", "1.5"),
    ("sql", "'%3B%20DROP%20TABLE%20records%3B--"),
    ("json", "%7B%22a%22%3A1%7D"),
    ("spaces", "%20%20"),
];

/// Header values that are hostile in some way (bytes an HTTP client can send).
const ODD_HEADER: &[(&str, &[u8])] = &[
    ("empty", b""),
    ("not UTF-8", b"\xff\xfe"),
    ("latin-1", b"caf\xe9"),
    ("padded", b"  x  "),
    ("tab inside", b"a\tb"),
    ("unicode", "ключ✓".as_bytes()),
    ("negative", b"-1"),
    ("json", b"{\"a\":1}"),
];

/// A parameter of an operation, as the document declares it.
struct Param {
    name: String,
    location: String,
    required: bool,
    schema: Value,
    example: Option<Value>,
}

fn params_of(doc: &Value, op: &Value) -> Vec<Param> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| deref(doc, p))
        .map(|p| Param {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            location: p["in"].as_str().unwrap_or_default().to_owned(),
            required: p["required"].as_bool().unwrap_or(false),
            schema: main_schema(deref(doc, &p["schema"])).clone(),
            example: p
                .get("example")
                .or_else(|| p["schema"].get("example"))
                .cloned(),
        })
        .collect()
}

/// For `oneOf: [null, X]` (an optional value), X; otherwise the schema itself.
fn main_schema(schema: &Value) -> &Value {
    schema["oneOf"]
        .as_array()
        .and_then(|branches| branches.iter().find(|b| b["type"] != "null"))
        .unwrap_or(schema)
}

pub fn deref<'d>(doc: &'d Value, v: &'d Value) -> &'d Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(doc, r).unwrap_or(v),
        None => v,
    }
}

/// A valid value for a parameter: a known real one, its example, its first enum value,
/// or one of its type within its bounds.
fn valid_value(known: &Known, p: &Param) -> String {
    if let Some(v) = known.get(&p.name) {
        return v.to_owned();
    }
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(e) = &p.example {
        return scalar(e);
    }
    if let Some(first) = p.schema["enum"].as_array().and_then(|e| e.first()) {
        return scalar(first);
    }
    match type_of(&p.schema) {
        "integer" | "number" => p.schema["minimum"].as_i64().unwrap_or(1).max(1).to_string(),
        "boolean" => "true".into(),
        _ => "x".into(),
    }
}

/// The schema's main type (the first that is not `null`).
pub fn type_of(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(t) => t,
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => "string",
    }
}

fn encode(s: &str) -> String {
    shard_manager::servers::encode(s)
}

/// Parameters the document says are not sent together: "every parameter" sends the
/// first and leaves the second out (`if-match` names a version: sent with a record
/// that does not exist, as the body's example writes, it is refused; the random
/// subsets send it, any documented answer being right).
const EXCLUSIVE: &[(&str, &str)] = &[("idempotency-key", "if-match")];

/// The requests of one documented operation.
pub fn for_operation(
    doc: &Value,
    known: &Known,
    rng: &mut StdRng,
    path: &str,
    method: &str,
    op: &Value,
) -> Vec<Case> {
    let params = params_of(doc, op);
    let body = request_body(doc, known, op);
    let base = |label: &str, with: &dyn Fn(&Param) -> bool, expect: Expect| {
        let mut case = Case {
            label: label.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            query: vec![],
            headers: vec![],
            body: body
                .as_ref()
                .map(|b| (Some("application/json".into()), b.to_string().into_bytes())),
            documented: true,
            expect,
        };
        for p in params.iter().filter(|p| with(p)) {
            set(&mut case, p, valid_value(known, p).into_bytes(), true);
        }
        case
    };
    let sent = |name: &str| params.iter().any(|p| p.name == name);
    let compatible = |p: &Param| {
        !EXCLUSIVE
            .iter()
            .any(|(first, left_out)| p.name == *left_out && sent(first))
    };
    let mut cases = vec![
        base("valid: required only", &|p| p.required, Expect::Success),
        base("valid: every parameter", &compatible, Expect::Success),
    ];
    for i in 0..3 {
        let pick: Vec<bool> = params.iter().map(|_| rng.random_bool(0.5)).collect();
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        // Parameters may depend on each other in ways only their descriptions say
        // (`id` needs `x-shard-key`): any documented answer will do.
        cases.push(base(
            &format!("valid: random subset {i}"),
            &|p| {
                let at = names.iter().position(|n| *n == p.name).unwrap_or(0);
                p.required || pick[at]
            },
            Expect::Documented,
        ));
    }
    let every = |_: &Param| true;
    for p in &params {
        // A mutation is sent with the required parameters only (so that no parameter
        // that wins over it hides what it does; only then is a refusal expected), with
        // every parameter, or with a random valid subset: the RNG picks, per mutation.
        let subset: Vec<String> = params
            .iter()
            .filter(|q| q.required || rng.random_bool(0.5))
            .map(|q| q.name.clone())
            .collect();
        let huge_query = random_text(rng, 6000).into_bytes();
        let huge_header = random_text(rng, 4000).into_bytes();
        let alone = |q: &Param| q.required || q.name == p.name;
        let some = |q: &Param| q.name == p.name || subset.contains(&q.name);
        let mut mutate = |what: &str, value: Vec<u8>, encoded: bool, refused: bool| {
            let (with, kind): (&dyn Fn(&Param) -> bool, &str) = match rng.random_range(0..3) {
                0 => (&alone, "alone"),
                1 => (&every, "with all"),
                _ => (&some, "with some"),
            };
            let expect = if refused && kind == "alone" {
                Expect::ClientError
            } else {
                Expect::Documented
            };
            let mut c = base(&format!("{}: {what}, {kind}", p.name), with, expect);
            set(&mut c, p, value, encoded);
            c
        };
        let mut missing = base(
            &format!("{} ({}) missing", p.name, p.location),
            &|q| q.name != p.name,
            {
                // A path parameter cannot be left out of its path: the request is sent
                // with its known value (`send`), as any other.
                if p.required && p.location != "path" {
                    Expect::ClientError
                } else {
                    Expect::Documented
                }
            },
        );
        missing.label = format!("{} ({}) missing", p.name, p.location);
        let mut found = vec![missing];
        if p.location == "query" {
            for (what, value) in ODD_QUERY {
                found.push(mutate(what, value.as_bytes().to_vec(), false, false));
            }
            let mut dup = mutate("twice", valid_value(known, p).into_bytes(), true, false);
            dup.query
                .push((p.name.clone(), encode(&valid_value(known, p))));
            found.push(dup);
            found.push(mutate("6000 bytes", huge_query, true, false));
            if matches!(type_of(&p.schema), "integer" | "boolean" | "number") {
                found.push(mutate("wrong type", b"abc".to_vec(), false, true));
            }
        } else if p.location == "header" {
            for (what, value) in ODD_HEADER {
                found.push(mutate(what, value.to_vec(), false, false));
            }
            found.push(mutate("4000 bytes", huge_header, false, false));
            if matches!(type_of(&p.schema), "integer" | "boolean" | "number") {
                found.push(mutate("wrong type", b"maybe".to_vec(), false, true));
            }
            if p.schema["enum"].is_array() {
                found.push(mutate("not in enum", b"sometimes".to_vec(), false, true));
            }
        }
        // Values crafted to get past the edge go with each base in turn.
        for (what, value) in crafted(&p.name) {
            for (with, kind) in [
                (&alone as &dyn Fn(&Param) -> bool, "alone"),
                (&every, "with all"),
                (&some, "with some"),
            ] {
                let mut c = base(
                    &format!("{}: {what}, {kind}", p.name),
                    with,
                    Expect::Documented,
                );
                set(&mut c, p, value.clone().into_bytes(), true);
                found.push(c);
            }
        }
        cases.extend(found);
    }
    let mut foreign = base(
        "a Host the gateway does not serve",
        &every,
        Expect::ClientError,
    );
    foreign
        .headers
        .push(("host".into(), b"rebind.example:80".to_vec()));
    cases.push(foreign);
    let mut unknown = base("unknown query parameter", &compatible, Expect::Success);
    unknown.query.push(("zzz_unknown".into(), "1".into()));
    cases.push(unknown);
    if let Some(body) = &body {
        cases.extend(body_cases(
            doc,
            &base("body", &every, Expect::Documented),
            body,
            op,
        ));
    }
    cases
}

/// Values (not yet encoded) that reach deeper than the edge checks: cursors that decode but name odd
/// positions, filters with NUL or deep nesting.
fn crafted(name: &str) -> Vec<(&'static str, String)> {
    let hex = |v: Value| -> String { v.to_string().bytes().map(|b| format!("{b:02x}")).collect() };
    match name {
        "cursor" => vec![
            (
                "year -250000",
                hex(json!([-8_000_000_000_000_000_000i64, "k", "i"])),
            ),
            (
                "year 250000",
                hex(json!([7_900_000_000_000_000_000i64, "k", "i"])),
            ),
            ("NUL in key", hex(json!([0, "a\u{0}b", "i"]))),
            ("NUL in id", hex(json!([0, "k", "a\u{0}b"]))),
            ("odd length", "abc".into()),
            ("not a triple", hex(json!({"a": 1}))),
        ],
        "where" => vec![
            ("NUL", r#"{"a":"b\u0000c"}"#.into()),
            ("NUL in a name", r#"{"a\u0000":1}"#.into()),
            ("array", "[1]".into()),
            (
                "deep",
                format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200)),
            ),
            ("lone surrogate", r#"{"a":"\ud800"}"#.into()),
            ("big number", r#"{"a":1e400}"#.into()),
        ],
        "x-min-lsn" => vec![
            ("unknown shard", "99:0/0".into()),
            ("huge lsn", "0:FFFFFFFF/FFFFFFFF".into()),
        ],
        _ => vec![],
    }
}

/// Sets (replaces) a parameter; `encode_it` percent-encodes a query value.
fn set(case: &mut Case, p: &Param, value: Vec<u8>, encode_it: bool) {
    if p.location == "query" {
        let text = String::from_utf8_lossy(&value).into_owned();
        let text = if encode_it { encode(&text) } else { text };
        case.query.retain(|(n, _)| *n != p.name);
        case.query.push((p.name.clone(), text));
    } else if p.location == "header" {
        case.headers.retain(|(n, _)| *n != p.name);
        case.headers.push((p.name.clone(), value));
    }
}

fn random_text(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[char] = &['a', 'Z', '0', '-', '_', '.', '~', 'é', '✓', ' ', '%', '"'];
    (0..len)
        .map(|_| *ALPHABET.choose(rng).unwrap_or(&'a'))
        .collect()
}

/// Every method the path does not document.
pub fn wrong_methods(path: &str, item: &Value, known: &Known) -> Vec<Case> {
    ["get", "post", "put", "delete", "patch"]
        .into_iter()
        .filter(|m| item.get(*m).is_none())
        .map(|m| Case {
            label: "wrong method".into(),
            method: m.to_owned(),
            path: path.to_owned(),
            query: vec![("table".into(), known.get("table").unwrap_or("x").into())],
            headers: vec![],
            body: None,
            documented: false,
            expect: Expect::ClientError,
        })
        .collect()
}
