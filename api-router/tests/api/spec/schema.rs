//! A JSON Schema validator for the subset of JSON Schema 2020-12 the OpenAPI 3.1
//! document uses: `$ref` into the document, `type` (one or a list), `properties`,
//! `required`, `additionalProperties`, `propertyNames`, `items`, `enum`, `const`,
//! `oneOf`/`anyOf`/`allOf`, `minimum`/`maximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems` and `format: date-time`. A keyword it does not know is
//! reported, never silently passed.

use serde_json::Value;

/// Words that annotate and never constrain.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "discriminator",
    "format",
];

/// Validates `value` against `schema`, resolving `$ref`s in `doc`; returns every
/// violation as `path: what`.
pub fn validate(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, schema, value, "$", &mut errors, 0);
    errors
}

/// Follows a local `#/...` reference (a JSON pointer into the document).
pub fn resolve<'d>(doc: &'d Value, reference: &str) -> Option<&'d Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>, depth: u32) {
    if depth > 64 {
        out.push(format!(
            "{at}: schema nests deeper than 64 levels (a $ref loop?)"
        ));
        return;
    }
    let Some(schema) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            out.push(format!("{at}: no value is allowed here"));
        }
        return;
    };
    for (word, arg) in schema {
        match word.as_str() {
            "$ref" => match arg.as_str().and_then(|r| resolve(doc, r)) {
                Some(target) => check(doc, target, value, at, out, depth + 1),
                None => out.push(format!("{at}: unresolvable $ref {arg}")),
            },
            "type" => {
                let allowed: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !allowed.iter().any(|t| is_type(value, t)) {
                    out.push(format!("{at}: {} is not of type {arg}", short(value)));
                }
            }
            "properties" => {
                if let (Some(props), Some(obj)) = (arg.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(v) = obj.get(name) {
                            check(doc, sub, v, &format!("{at}.{name}"), out, depth + 1);
                        }
                    }
                }
            }
            "required" => {
                if let Some(obj) = value.as_object() {
                    for name in arg
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !obj.contains_key(name) {
                            out.push(format!("{at}: required property `{name}` is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, v) in obj {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        check(doc, arg, v, &format!("{at}.{name}"), out, depth + 1);
                    }
                }
            }
            "propertyNames" => {
                if let Some(obj) = value.as_object() {
                    for name in obj.keys() {
                        let key = Value::String(name.clone());
                        check(
                            doc,
                            arg,
                            &key,
                            &format!("{at}.{name} (name)"),
                            out,
                            depth + 1,
                        );
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        check(doc, arg, v, &format!("{at}[{i}]"), out, depth + 1);
                    }
                }
            }
            "enum" => {
                if !arg.as_array().is_some_and(|a| a.contains(value)) {
                    out.push(format!("{at}: {} is not one of {arg}", short(value)));
                }
            }
            "const" => {
                if arg != value {
                    out.push(format!("{at}: {} is not {arg}", short(value)));
                }
            }
            "allOf" => {
                for sub in arg.as_array().into_iter().flatten() {
                    check(doc, sub, value, at, out, depth + 1);
                }
            }
            "anyOf" | "oneOf" => {
                let branches = arg.as_array().map(Vec::as_slice).unwrap_or_default();
                let failures: Vec<Vec<String>> = branches
                    .iter()
                    .map(|sub| {
                        let mut e = Vec::new();
                        check(doc, sub, value, at, &mut e, depth + 1);
                        e
                    })
                    .collect();
                let matched = failures.iter().filter(|e| e.is_empty()).count();
                if matched == 0 {
                    out.push(format!(
                        "{at}: matches none of {word}: {}",
                        failures
                            .iter()
                            .map(|e| e.join(", "))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    ));
                } else if word == "oneOf" && matched > 1 {
                    out.push(format!(
                        "{at}: matches {matched} branches of oneOf, not one"
                    ));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(bound), Some(n)) = (arg.as_f64(), value.as_f64()) {
                    let ok = if word == "minimum" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        out.push(format!("{at}: {n} breaks {word} {bound}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let (Some(bound), Some(s)) = (arg.as_u64(), value.as_str()) {
                    let n = s.chars().count() as u64;
                    let ok = if word == "minLength" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        out.push(format!("{at}: length {n} breaks {word} {bound}"));
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let (Some(bound), Some(a)) = (arg.as_u64(), value.as_array()) {
                    let n = a.len() as u64;
                    let ok = if word == "minItems" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        out.push(format!("{at}: {n} items break {word} {bound}"));
                    }
                }
            }
            w if ANNOTATIONS.contains(&w) => {}
            other => out.push(format!("{at}: the validator does not know `{other}`")),
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") {
        if let Some(s) = value.as_str() {
            if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                out.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
            }
        }
    }
}

fn is_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

/// A value, cut short for a message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[test]
fn the_validator_catches_what_it_claims_to() {
    let doc = serde_json::json!({"components": {"schemas": {
        "P": {"type": "object", "required": ["a"], "properties": {
            "a": {"type": ["integer", "null"], "minimum": 0},
            "t": {"type": "string", "format": "date-time"},
            "e": {"enum": ["x", "y"]}}}}}});
    let p = serde_json::json!({"$ref": "#/components/schemas/P"});
    let one = serde_json::json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(validate(&doc, &p, &serde_json::json!({"a": null, "e": "x"})).is_empty());
    assert_eq!(validate(&doc, &p, &serde_json::json!({})).len(), 1);
    assert_eq!(validate(&doc, &p, &serde_json::json!({"a": -1})).len(), 1);
    assert_eq!(
        validate(&doc, &p, &serde_json::json!({"a": 1, "t": "now"})).len(),
        1
    );
    assert_eq!(
        validate(&doc, &p, &serde_json::json!({"a": 1, "e": "z"})).len(),
        1
    );
    assert!(validate(&doc, &one, &serde_json::json!(3)).is_empty());
    assert_eq!(validate(&doc, &one, &serde_json::json!(true)).len(), 1);
    let unknown = serde_json::json!({"patternProperties": {}});
    assert_eq!(validate(&doc, &unknown, &serde_json::json!({})).len(), 1);
}
