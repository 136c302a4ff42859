//! Request bodies: the documented example, and malformed, mistyped and wrongly
//! labelled variants of it.

use serde_json::{json, Value};

use super::case::{Case, Expect, Known};
use super::cases::{deref, type_of};

/// The operation's JSON request body example, with known values filled in.
pub fn request_body(doc: &Value, known: &Known, op: &Value) -> Option<Value> {
    let content = &op["requestBody"]["content"]["application/json"];
    let schema = deref(doc, &content["schema"]);
    let mut body = content
        .get("example")
        .or_else(|| schema.get("example"))
        .cloned()?;
    if let (Some(obj), Some(table)) = (body.as_object_mut(), known.get("table")) {
        if obj.contains_key("table") {
            obj.insert("table".into(), json!(table));
        }
    }
    Some(body)
}

/// Malformed, mistyped and wrongly labelled bodies.
pub fn body_cases(doc: &Value, base: &Case, example: &Value, op: &Value) -> Vec<Case> {
    let schema = deref(
        doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    );
    let with = |label: &str, ctype: Option<&str>, bytes: Vec<u8>, expect: Expect| Case {
        label: format!("body: {label}"),
        body: Some((ctype.map(str::to_owned), bytes)),
        expect,
        ..base.clone()
    };
    let json_body = |label: &str, v: Value, expect: Expect| {
        with(
            label,
            Some("application/json"),
            v.to_string().into_bytes(),
            expect,
        )
    };
    let text = example.to_string().into_bytes();
    let mut cases = vec![
        with(
            "malformed",
            Some("application/json"),
            b"{\"table\": ".to_vec(),
            Expect::ClientError,
        ),
        with(
            "empty",
            Some("application/json"),
            vec![],
            Expect::ClientError,
        ),
        with(
            "XML",
            Some("application/xml"),
            b"<a/>".to_vec(),
            Expect::ClientError,
        ),
        with("no content type", None, text.clone(), Expect::Documented),
        with(
            "odd content type",
            Some("application/json;;; ="),
            text.clone(),
            Expect::Documented,
        ),
        with(
            "not UTF-8",
            Some("application/json"),
            b"{\"table\":\"\xff\"}".to_vec(),
            Expect::ClientError,
        ),
        with(
            "NUL byte",
            Some("application/json"),
            b"{\"table\":\"users\0\"}".to_vec(),
            Expect::ClientError,
        ),
        with(
            "70 kB",
            Some("application/json"),
            vec![b' '; 70_000],
            Expect::ClientError,
        ),
        json_body("array", json!([]), Expect::ClientError),
        json_body("string", json!("x"), Expect::ClientError),
        json_body("null", Value::Null, Expect::ClientError),
        json_body("number", json!(42), Expect::ClientError),
    ];
    let Some(props) = schema["properties"].as_object() else {
        return cases;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, prop) in props {
        let mut without = example.clone();
        without.as_object_mut().map(|o| o.remove(name));
        let expect = if required.contains(&name.as_str()) {
            Expect::ClientError
        } else {
            Expect::Documented
        };
        cases.push(json_body(&format!("{name} missing"), without, expect));
        let mut odd: Vec<(&str, Value)> = vec![
            ("null", Value::Null),
            ("number", json!(5)),
            ("float", json!(1.5)),
            ("string", json!("x")),
            ("empty string", json!("")),
            ("NUL string", json!("a\u{0}b")),
            ("array", json!([1])),
            ("object", json!({"x": 1})),
            ("object with NUL", json!({"s": "a\u{0}b", "k\u{0}": 1})),
            ("huge string", json!("x".repeat(300))),
            ("negative", json!(-1)),
        ];
        if type_of(&deref(doc, prop).clone()) == "array" {
            let item = example[name.as_str()][0].clone();
            odd.extend([
                ("empty array", json!([])),
                ("too many items", Value::Array(vec![item.clone(); 51])),
            ]);
            for (i, item) in hostile_items().into_iter().enumerate() {
                odd.push((HOSTILE_LABELS[i], Value::Array(vec![item])));
            }
            odd.push(("hostile items together", Value::Array(hostile_items())));
        }
        for (what, value) in odd {
            let mut changed = example.clone();
            changed[name.as_str()] = value;
            cases.push(json_body(
                &format!("{name}: {what}"),
                changed,
                Expect::Documented,
            ));
        }
    }
    cases
}

/// Records a batch may carry that are wrong in some way, each named.
const HOSTILE_LABELS: [&str; 16] = [
    "item: a number",
    "item: empty object",
    "item: no key",
    "item: data a string",
    "item: NUL in data",
    "item: NUL in key",
    "item: empty key",
    "item: key an array",
    "item: key a number",
    "item: 300-byte key",
    "item: id an object",
    "item: empty id",
    "item: NUL in id",
    "item: negative id",
    "item: fractional id",
    "item: data.id a boolean",
];

fn hostile_items() -> Vec<Value> {
    vec![
        json!(5),
        json!({}),
        json!({"data": {}}),
        json!({"data": "x"}),
        json!({"data": {"s": "\u{0}"}}),
        json!({"shard_key": "a\u{0}b", "data": {}}),
        json!({"shard_key": "", "data": {}}),
        json!({"shard_key": ["x"], "data": {}}),
        json!({"shard_key": 7, "data": {}}),
        json!({"shard_key": "k".repeat(300), "data": {}}),
        json!({"shard_key": "k", "id": {"x": 1}, "data": {}}),
        json!({"shard_key": "k", "id": "", "data": {}}),
        json!({"shard_key": "k", "id": "a\u{0}", "data": {}}),
        json!({"shard_key": "k", "id": -5, "data": {}}),
        json!({"shard_key": "k", "id": 1.5, "data": {}}),
        json!({"shard_key": "k", "data": {"id": true}}),
    ]
}
