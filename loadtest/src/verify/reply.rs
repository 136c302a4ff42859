//! Reading the gateway's answers to verify requests: a write's fate, and what a read
//! of a verify record found (which write of this run its data names, if any).

use serde_json::Value;

use super::fate::{self, Answer};
use super::ledger::{Fate, Seen};
use crate::http::Reply;

/// The fate of a write from its reply.
pub fn write_fate(reply: &Reply) -> Fate {
    let body = reply.json().unwrap_or(Value::Null);
    let problem = body["type"].as_str().map(fate::problem_slug);
    let detail = reply.detail();
    fate::classify(Answer {
        status: reply.status,
        problem,
        version: body["version"].as_i64(),
        created: body["created"].as_bool(),
        detail: &detail,
    })
}

/// What a read of a verify record returned; `seq` only for data of run `run`.
pub fn seen(reply: &Reply, run: &str) -> Seen {
    match reply.status {
        200 => {
            let body = reply.json().unwrap_or(Value::Null);
            found(&body["record"], run).unwrap_or_else(|| Seen::Failed {
                why: "200 without record.version".into(),
            })
        }
        404 => Seen::Missing,
        _ => Seen::Failed {
            why: reply.detail(),
        },
    }
}

/// A read's `record`: its version and the write of run `run` its data names.
fn found(record: &Value, run: &str) -> Option<Seen> {
    let version = record["version"].as_i64()?;
    let tag = &record["data"]["verify"];
    let seq = (tag["run"].as_str() == Some(run))
        .then(|| tag["seq"].as_u64())
        .flatten();
    Some(Seen::Found { version, seq })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_this_runs_tag_names_a_write() {
        let record = |data: Value| json!({"version": 12, "data": data});
        let ours = record(json!({"verify": {"run": "ab12", "user": 0, "seq": 7}}));
        assert_eq!(
            found(&ours, "ab12"),
            Some(Seen::Found {
                version: 12,
                seq: Some(7)
            })
        );
        assert_eq!(
            found(&ours, "cd34"),
            Some(Seen::Found {
                version: 12,
                seq: None
            })
        );
        assert_eq!(
            found(&record(json!({"name": "x"})), "ab12"),
            Some(Seen::Found {
                version: 12,
                seq: None
            })
        );
        assert_eq!(found(&json!({}), "ab12"), None);
    }
}
