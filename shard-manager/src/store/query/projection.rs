//! The fields a query returns: the parts of a document its paths name.

use serde_json::Value;

use super::FieldPath;

/// The parts of `doc` that `fields` name, nested as in `doc`; a field the record lacks
/// is left out. A path through an array keeps the element it names only (under its
/// index as a member name).
pub fn project(doc: &Value, fields: &[FieldPath]) -> Value {
    let mut out = Value::Object(Default::default());
    for f in fields {
        let (Some(v), Some((last, init))) = (f.get(doc), f.segments().split_last()) else {
            continue;
        };
        let mut at = &mut out;
        for s in init {
            let Value::Object(members) = at else { break };
            at = members
                .entry(s.clone())
                .or_insert_with(|| Value::Object(Default::default()));
        }
        if let Value::Object(members) = at {
            members.insert(last.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_the_fields_named_nested() {
        let doc = json!({"a": {"b": 1, "c": 2}, "d": 3});
        let fields: Vec<FieldPath> = ["a.b", "d", "x.y"]
            .iter()
            .map(|f| FieldPath::parse(f).unwrap())
            .collect();
        assert_eq!(project(&doc, &fields), json!({"a": {"b": 1}, "d": 3}));
    }
}
