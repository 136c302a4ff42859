//! How an answer differs from the one a document shows in its `# ...` lines.
//!
//! A shown answer whose first line starts with `{` or `[` is JSON (one document, or one
//! per line):
//! - an object's fields are checked, and the answer may have others;
//! - a string with `…` in it (`"…"`, `"7771…"`) stands for any string;
//! - `…` among an object's fields (`{"a":1,…}`) marks fields left out, at the end of an
//!   array (`[{"shard":0},…]`) elements left out, and alone (`[…]`) any array;
//! - a field named in `varies` (the marker's `varies: FIELD ...`) must be there with the
//!   same JSON type, any value;
//! - anything else must be equal (numbers as numbers: `1` and `1.0` are equal).
//!
//! Any other answer (CSV, `curl -i`'s status line and headers) is text: each shown line
//! is a line of the answer, in the same order, where `…` stands for any text (a line of
//! `…` alone for lines left out).

use serde_json::Value;

/// What a document writes for "left out" or "any".
const ELLIPSIS: char = '…';

/// What `…` at the end of a shown array becomes once the shown answer is parsed: a string
/// no document shows, so an array that really ends with `"…"` keeps its meaning.
const MORE_ELEMENTS: &str = "\u{1}more elements";

/// How many characters of an unreadable answer a difference quotes.
const QUOTED: usize = 300;

/// How `answer` differs from `shown`, one line per difference; empty when it matches.
/// `varies` names the fields whose values differ from run to run.
pub fn answer_diff(shown: &str, answer: &str, varies: &[&str]) -> Vec<String> {
    let first_line = shown.lines().next().unwrap_or_default();
    if first_line.trim_start().starts_with(['{', '[']) {
        json_diff(shown, answer, varies)
    } else {
        text_diff(shown, answer).into_iter().collect()
    }
}

/// Whether a comparison must find the answer like the one shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Differ,
}

/// An answer whose verdict is known: a matcher that lets everything through, or nothing,
/// fails on one of these.
#[derive(Debug, Clone, Copy)]
pub struct KnownVerdict {
    /// The `# ...` lines, without their `# `.
    pub shown: &'static str,
    /// The body the server answered.
    pub answer: &'static str,
    /// The marker's varying fields.
    pub varies: &'static [&'static str],
    pub verdict: Verdict,
}

impl KnownVerdict {
    /// Whether [`answer_diff`] gives this case its verdict.
    pub fn holds(&self) -> bool {
        let matches = answer_diff(self.shown, self.answer, self.varies).is_empty();
        matches == (self.verdict == Verdict::Match)
    }
}

/// The cases `doc-examples known-verdicts` (run by `scripts/docs.sh check`) and the unit
/// tests check.
pub const KNOWN_VERDICTS: &[KnownVerdict] = &[
    known(
        r#"{"a":1,"b":"x"}"#,
        r#"{"b":"x","a":1,"c":[]}"#,
        &[],
        Verdict::Match,
    ),
    known(r#"{"a":1}"#, r#"{"a":2}"#, &[], Verdict::Differ),
    known(r#"{"a":1}"#, r#"{"b":1}"#, &[], Verdict::Differ),
    known(r#"{"n":1.0}"#, r#"{"n":1}"#, &[], Verdict::Match),
    known(
        r#"{"v":12,…,"lsn":"1:0/A"}"#,
        r#"{"v":3,"x":0,"lsn":"1:0/B"}"#,
        &["v", "lsn"],
        Verdict::Match,
    ),
    known(r#"{"v":12}"#, r#"{"v":"12"}"#, &["v"], Verdict::Differ),
    known(r#"{"v":12}"#, r#"{}"#, &["v"], Verdict::Differ),
    known(
        r#"{"id":"9d1c…"}"#,
        r#"{"id":"anything"}"#,
        &[],
        Verdict::Match,
    ),
    known(r#"{"id":"…"}"#, r#"{"id":7}"#, &[], Verdict::Differ),
    known(
        r#"{"s":[{"k":1},…]}"#,
        r#"{"s":[{"k":1},{"k":2}]}"#,
        &[],
        Verdict::Match,
    ),
    known(
        r#"{"s":[{"k":1}]}"#,
        r#"{"s":[{"k":1},{"k":2}]}"#,
        &[],
        Verdict::Differ,
    ),
    known(r#"{"s":[…]}"#, r#"{"s":[]}"#, &[], Verdict::Match),
    known(r#"{"s":[…]}"#, r#"{"s":{}}"#, &[], Verdict::Differ),
    known(
        "{\"a\":1}\n{\"b\":2}",
        "{\"a\":1}\n{\"b\":3}",
        &[],
        Verdict::Differ,
    ),
    known(r#"{"a":1,"#, r#"{"a":1}"#, &[], Verdict::Differ),
    known(
        "HTTP/1.1 201 Created\n…\nreplayed: true",
        "HTTP/1.1 201 Created\r\nx: 1\r\nreplayed: true\r\n",
        &[],
        Verdict::Match,
    ),
    known(
        "HTTP/1.1 201 Created\nreplayed: true",
        "HTTP/1.1 201 Created\r\nx: 1\r\n",
        &[],
        Verdict::Differ,
    ),
    known("b\na", "a\nb", &[], Verdict::Differ),
    known(
        r#"u,a,…,"{""c"": 1}""#,
        "k\nu,a,1,2026-11-25T15:01,\"{\"\"c\"\": 1}\"",
        &[],
        Verdict::Match,
    ),
    known(
        r#"u,a,…,"{""c"": 2}""#,
        "k\nu,a,1,2026-11-25T15:01,\"{\"\"c\"\": 1}\"",
        &[],
        Verdict::Differ,
    ),
];

const fn known(
    shown: &'static str,
    answer: &'static str,
    varies: &'static [&'static str],
    verdict: Verdict,
) -> KnownVerdict {
    KnownVerdict {
        shown,
        answer,
        varies,
        verdict,
    }
}

/// A JSON answer against a JSON shown answer.
fn json_diff(shown: &str, answer: &str, varies: &[&str]) -> Vec<String> {
    let read = without_ellipses(shown);
    let Ok(want) = documents(&read) else {
        return vec![format!(
            "the shown answer is not JSON (its `…` left out): {}",
            quote(&read)
        )];
    };
    let Ok(got) = documents(answer) else {
        return vec![format!("the answer is not JSON: {}", quote(answer))];
    };
    if want.len() > 1 && got.len() != want.len() {
        return vec![format!(
            "{} JSON documents shown, {} answered",
            want.len(),
            got.len()
        )];
    }
    let want_several = want.len() > 1;
    let mut differences = Vec::new();
    for (i, want) in want.iter().enumerate() {
        let place = if want_several {
            format!("document {}", i + 1)
        } else {
            String::new()
        };
        let got = got.get(i).unwrap_or(&Value::Null);
        Comparison {
            varies,
            differences: &mut differences,
        }
        .diff(want, got, &place);
    }
    differences
}

/// One JSON document or several, one after the other.
fn documents(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect()
}

/// The shown answer with each `…` outside strings read: among an object's fields it is
/// dropped with one comma beside it; at the end of an array it becomes
/// [`MORE_ELEMENTS`]. Anywhere else it stays, and the text is not JSON.
fn without_ellipses(shown: &str) -> String {
    let mut out = String::with_capacity(shown.len());
    let mut open = Vec::new(); // the containers the text is inside, '{' or '['
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = shown.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => open.push(c),
            '}' | ']' => {
                open.pop();
            }
            ELLIPSIS => {
                let after = shown[at + c.len_utf8()..].trim_start();
                match (open.last(), after.chars().next()) {
                    (Some('{'), Some('}')) => {
                        // `,…}` or `{…}`: the comma before it goes too.
                        let kept = out.trim_end().len();
                        if out[..kept].ends_with(',') {
                            out.truncate(kept - 1);
                        }
                        continue;
                    }
                    (Some('{'), Some(',')) => {
                        // `…,"key":`: the comma after it goes too.
                        while chars.next_if(|&(_, c)| c != ',').is_some() {}
                        chars.next();
                        continue;
                    }
                    (Some('['), Some(']')) => {
                        out.push_str(&Value::from(MORE_ELEMENTS).to_string());
                        continue;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A comparison of one shown document with its answer, collecting the differences.
struct Comparison<'a> {
    varies: &'a [&'a str],
    differences: &'a mut Vec<String>,
}

impl Comparison<'_> {
    /// `got` against `want`, at `place` (a path such as `.shards[0].role`).
    fn diff(&mut self, want: &Value, got: &Value, place: &str) {
        let at = if place.is_empty() {
            "the answer"
        } else {
            place
        };
        match want {
            Value::String(s) if s.contains(ELLIPSIS) => {
                if !got.is_string() {
                    self.differ(format!("{at}: a string, got {got}"));
                }
            }
            Value::Object(fields) => {
                let Value::Object(got_fields) = got else {
                    return self.differ(format!("{at}: an object, got {got}"));
                };
                for (key, want) in fields {
                    let field = format!("{place}.{key}");
                    match got_fields.get(key) {
                        None => self.differ(format!("{field}: missing")),
                        Some(got) if self.varies.contains(&key.as_str()) => {
                            if type_name(got) != type_name(want) {
                                self.differ(format!(
                                    "{field}: a {} (it varies), got {got}",
                                    type_name(want)
                                ));
                            }
                        }
                        Some(got) => self.diff(want, got, &field),
                    }
                }
            }
            Value::Array(items) => {
                let open = items.last().and_then(Value::as_str) == Some(MORE_ELEMENTS);
                let items = if open {
                    &items[..items.len() - 1]
                } else {
                    items
                };
                let Value::Array(got_items) = got else {
                    return self.differ(format!("{at}: an array, got {got}"));
                };
                let fits = if open {
                    got_items.len() >= items.len()
                } else {
                    got_items.len() == items.len()
                };
                if !fits {
                    let more = if open { " or more" } else { "" };
                    return self.differ(format!(
                        "{at}: {}{more} elements, got {}",
                        items.len(),
                        got_items.len()
                    ));
                }
                for (i, (want, got)) in items.iter().zip(got_items).enumerate() {
                    self.diff(want, got, &format!("{place}[{i}]"));
                }
            }
            _ if same_scalar(want, got) => {}
            _ => self.differ(format!("{at}: {want}, got {got}")),
        }
    }

    fn differ(&mut self, difference: String) {
        self.differences.push(difference);
    }
}

/// Equal scalars; numbers by value, so `1` is `1.0`.
fn same_scalar(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        _ => want == got,
    }
}

/// A value's JSON type, as a `varies` difference names it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A text answer against a text shown answer: the first shown line that no later line
/// of the answer is like, if any.
fn text_diff(shown: &str, answer: &str) -> Option<String> {
    let patterns: Vec<&str> = shown
        .lines()
        .filter(|line| {
            let mut chars = line.trim().chars();
            !(chars.next() == Some(ELLIPSIS) && chars.next().is_none())
        })
        .collect();
    let mut next = 0;
    for line in answer.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if next < patterns.len() && like(line, patterns[next]) {
            next += 1;
        }
    }
    patterns
        .get(next)
        .map(|pattern| format!("no line of the answer is like: {pattern}"))
}

/// Whether `line` is like `pattern`, where each `…` stands for any text.
fn like(line: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split(ELLIPSIS).collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return line == pattern;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        let Some(found) = rest.find(part) else {
            return false;
        };
        rest = &rest[found + part.len()..];
    }
    rest.ends_with(last)
}

/// The start of a text, for a difference that quotes it.
fn quote(text: &str) -> String {
    text.chars().take(QUOTED).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_known_verdict_holds() {
        for (n, case) in KNOWN_VERDICTS.iter().enumerate() {
            assert!(
                case.holds(),
                "case {n} should be {:?}: shown {:?}, answer {:?}, differences {:?}",
                case.verdict,
                case.shown,
                case.answer,
                answer_diff(case.shown, case.answer, case.varies)
            );
        }
    }

    #[test]
    fn the_known_verdicts_cover_both_kinds_and_both_verdicts() {
        let json = |c: &&KnownVerdict| c.shown.starts_with('{');
        for verdict in [Verdict::Match, Verdict::Differ] {
            let of = || KNOWN_VERDICTS.iter().filter(move |c| c.verdict == verdict);
            assert!(of().filter(json).count() >= 5, "{verdict:?}: JSON cases");
            assert!(of().filter(|c| !json(c)).count() >= 2, "{verdict:?}: text");
        }
    }

    #[test]
    fn a_different_value_names_its_place() {
        assert_eq!(
            answer_diff(r#"{"s":[{"k":1,"r":"x"}]}"#, r#"{"s":[{"k":2}]}"#, &[]),
            [".s[0].k: 1, got 2", ".s[0].r: missing"]
        );
        assert_eq!(
            answer_diff("[1]", r#"{"a":1}"#, &[]),
            [r#"the answer: an array, got {"a":1}"#]
        );
    }

    #[test]
    fn a_varying_field_keeps_its_type() {
        assert_eq!(
            answer_diff(r#"{"lsn":"0/A"}"#, r#"{"lsn":"0/B"}"#, &["lsn"]),
            Vec::<String>::new()
        );
        assert_eq!(
            answer_diff(r#"{"lsn":"0/A"}"#, r#"{"lsn":null}"#, &["lsn"]),
            [".lsn: a string (it varies), got null"]
        );
    }

    #[test]
    fn an_array_is_as_long_as_shown_unless_left_open() {
        assert_eq!(
            answer_diff(r#"{"s":[1,2]}"#, r#"{"s":[1]}"#, &[]),
            [".s: 2 elements, got 1"]
        );
        assert_eq!(
            answer_diff(r#"{"s":[1,2,…]}"#, r#"{"s":[1]}"#, &[]),
            [".s: 2 or more elements, got 1"]
        );
        // A real `"…"` element is a string pattern, not left-out elements.
        assert_eq!(
            answer_diff(r#"["…"]"#, r#"["x","y"]"#, &[]),
            ["the answer: 1 elements, got 2"]
        );
    }

    #[test]
    fn several_documents_are_compared_one_by_one() {
        assert_eq!(
            answer_diff("{\"a\":1}\n{\"b\":2}", "{\"a\":1}\n{\"b\":3}", &[]),
            ["document 2.b: 2, got 3"]
        );
        assert_eq!(
            answer_diff("{\"a\":1}\n{\"b\":2}", "{\"a\":1}", &[]),
            ["2 JSON documents shown, 1 answered"]
        );
    }

    #[test]
    fn what_is_not_json_says_so() {
        assert_eq!(
            answer_diff(r#"{"a":1,"#, r#"{"a":1}"#, &[]),
            [r#"the shown answer is not JSON (its `…` left out): {"a":1,"#]
        );
        assert_eq!(
            answer_diff(r#"{"a":1}"#, "<html>", &[]),
            ["the answer is not JSON: <html>"]
        );
    }

    #[test]
    fn ellipses_are_read_outside_strings_only() {
        let read = |shown| documents(&without_ellipses(shown)).unwrap();
        assert_eq!(
            read(r#"{"v":12, … ,"lsn":"a…b"}"#),
            [json!({"v": 12, "lsn": "a…b"})]
        );
        assert_eq!(read(r#"{ … }"#), [json!({})]);
        assert_eq!(read(r#"{"a":1,…}"#), [json!({"a": 1})]);
        assert_eq!(read("[{\"k\":1},\n …]"), [json!([{"k": 1}, MORE_ELEMENTS])]);
        assert_eq!(read(r#"{"s":"\"…"}"#), [json!({"s": "\"…"})]);
    }

    #[test]
    fn text_lines_match_in_order_with_ellipses() {
        assert!(like("x-request-id: 42", "x-request-id: …"));
        assert!(like("abcabc", "a…c"));
        assert!(like("ab", "a…b"));
        assert!(!like("a", "a…a"), "the ends may not overlap");
        assert!(like("a-b-c", "…b…"));
        assert_eq!(
            answer_diff(
                "HTTP/1.1 200 OK\nx: 1",
                "HTTP/1.1 201 Created\r\nx: 1\r\n",
                &[]
            ),
            ["no line of the answer is like: HTTP/1.1 200 OK"]
        );
    }
}
