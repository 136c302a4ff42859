//! The verdict for people and for scripts: a section after goose's report (and one for
//! the change stream, when it was followed), one machine-readable line
//! (`verify: {...}`), and the `--verify-out` file holding the verdicts and the whole
//! ledger, which `--verify-check` reads back later.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::follow::Followed;
use super::ledger::Ledger;
use super::stream_verdict::StreamVerdict;
use super::verdict::Verdict;

/// Findings printed in the text section (all of them are in the file).
const SHOWN_FINDINGS: usize = 20;

/// The `--verify-out` file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Saved {
    /// The gateway the run went through.
    pub host: String,
    pub verdict: Verdict,
    /// The change stream's verdict, when the run followed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamVerdict>,
    pub ledger: Ledger,
}

impl Saved {
    /// Whether every promise held: the records' and the stream's.
    pub fn holds(&self) -> bool {
        self.verdict.holds() && self.stream.as_ref().is_none_or(StreamVerdict::holds)
    }

    /// Writes the file (JSON).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec(self)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the verify file {}", path.display()))
    }

    /// Reads a file written by [`Saved::write`].
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read the verify file {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a file written by --verify-out", path.display()))
    }
}

/// The text section.
pub fn render(ledger: &Ledger, verdict: &Verdict) -> String {
    let mut out = String::new();
    let users: std::collections::BTreeSet<&str> = ledger
        .records
        .keys()
        .filter_map(|k| k.rsplit('-').nth(1))
        .collect();
    let _ = writeln!(
        out,
        "\nverify (run {}, {} records of {} users, read back from their primaries):",
        ledger.run,
        verdict.records,
        users.len()
    );
    let w = verdict.writes;
    let _ = writeln!(
        out,
        "  writes: {} acknowledged, {} failed cleanly, {} unknown (may or may not be applied)",
        w.acknowledged, w.failed, w.unknown
    );
    let _ = writeln!(
        out,
        "  token reads: {} ({} without an answer)",
        verdict.token_reads, verdict.token_reads_failed
    );
    let _ = writeln!(
        out,
        "  lost: {} | applied twice: {} | stale token reads: {} | unreadable: {}",
        verdict.lost, verdict.applied_twice, verdict.stale_token_reads, verdict.unreadable
    );
    let findings = verdict
        .findings
        .iter()
        .map(|f| format!("{:?} {}: {}", f.kind, f.key, f.detail));
    let held = "every acknowledged write is there, none applied twice, no token read stale";
    write_verdict(&mut out, verdict.holds(), held, findings.collect());
    out
}

/// The verdict's last lines: what held, or `BROKEN` and the first findings.
fn write_verdict(out: &mut String, holds: bool, held: &str, findings: Vec<String>) {
    if holds {
        let _ = writeln!(out, "  verdict: holds: {held}");
        return;
    }
    let _ = writeln!(out, "  verdict: BROKEN");
    for f in findings.iter().take(SHOWN_FINDINGS) {
        let _ = writeln!(out, "    {f}");
    }
    if findings.len() > SHOWN_FINDINGS {
        let more = findings.len() - SHOWN_FINDINGS;
        let _ = writeln!(out, "    ... {more} more (all in --verify-out)");
    }
}

/// The change stream's section.
pub fn render_stream(followed: &Followed, v: &StreamVerdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nchange stream (Server-Sent Events from the table's end, found in {:.2} s; {} \
         connection(s), {} change(s) read in the closing pages):",
        followed.start_secs, followed.connects, followed.paged
    );
    let _ = writeln!(
        out,
        "  delivered: {} changes ({} of this run) in {:.1} s, {:.0}/s | sent again: {} | \
         resolved marks: {}",
        v.delivered,
        v.ours,
        v.span_secs,
        v.rate(),
        v.redelivered,
        v.resolved
    );
    let _ = writeln!(
        out,
        "  lag from the change's time: p50 {:.1} ms, p99 {:.1} ms | from the write's \
         answer: p50 {:.1} ms, p99 {:.1} ms",
        v.commit_lag.p50_ms, v.commit_lag.p99_ms, v.ack_lag.p50_ms, v.ack_lag.p99_ms
    );
    let _ = writeln!(
        out,
        "  lost: {} | twice: {} | out of order: {} | phantom: {} | torn transactions: {}",
        v.lost, v.twice, v.out_of_order, v.phantom, v.torn
    );
    for why in followed.interruptions.iter().take(SHOWN_FINDINGS) {
        let _ = writeln!(out, "  interrupted: {why}");
    }
    let findings = v
        .findings
        .iter()
        .map(|f| format!("{:?} {}: {}", f.kind, f.key, f.detail));
    let held = "every acknowledged write arrived once, in order, nothing else";
    write_verdict(&mut out, v.holds(), held, findings.collect());
    out
}

/// The one line scripts read: `verify: {"run": ..., "lost": 0, ..., "stream": {...}}`;
/// `holds` is every promise's, the stream's included.
pub fn line(ledger: &Ledger, verdict: &Verdict, stream: Option<&StreamVerdict>) -> String {
    let w = verdict.writes;
    let summary = json!({
        "run": ledger.run,
        "records": verdict.records,
        "acknowledged": w.acknowledged,
        "failed": w.failed,
        "unknown": w.unknown,
        "token_reads": verdict.token_reads,
        "lost": verdict.lost,
        "applied_twice": verdict.applied_twice,
        "stale_token_reads": verdict.stale_token_reads,
        "unreadable": verdict.unreadable,
        "holds": verdict.holds() && stream.is_none_or(StreamVerdict::holds),
        "stream": stream.map(|v| json!({
            "delivered": v.delivered,
            "ours": v.ours,
            "per_second": v.rate(),
            "redelivered": v.redelivered,
            "lost": v.lost,
            "twice": v.twice,
            "out_of_order": v.out_of_order,
            "phantom": v.phantom,
            "torn": v.torn,
            "incomplete": v.incomplete,
            "lag_p50_ms": v.commit_lag.p50_ms,
            "lag_p99_ms": v.commit_lag.p99_ms,
            "ack_lag_p50_ms": v.ack_lag.p50_ms,
            "ack_lag_p99_ms": v.ack_lag.p99_ms,
            "holds": v.holds(),
        })),
    });
    format!("verify: {summary}")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::verify::verdict::{Finding, Kind};

    #[test]
    fn the_line_and_the_text_carry_the_counts() {
        let mut ledger = Ledger::new("ab12");
        ledger.sent("users", "verify-ab12-0-1", "verify-ab12-0-1", 1);
        let verdict = Verdict {
            records: 1,
            lost: 1,
            findings: vec![Finding {
                kind: Kind::Lost,
                key: "verify-ab12-0-1".into(),
                detail: "missing".into(),
            }],
            ..Verdict::default()
        };
        let line = line(&ledger, &verdict, None);
        let json: serde_json::Value =
            serde_json::from_str(line.strip_prefix("verify: ").unwrap()).unwrap();
        assert_eq!(json["lost"], 1);
        assert_eq!(json["holds"], false);
        assert_eq!(json["stream"], Value::Null);
        let text = render(&ledger, &verdict);
        assert!(text.contains("1 records of 1 users"), "{text}");
        assert!(text.contains("lost: 1 | applied twice: 0"), "{text}");
        assert!(text.contains("Lost verify-ab12-0-1: missing"), "{text}");
    }

    #[test]
    fn the_stream_section_and_line_carry_its_figures_and_findings() {
        use crate::verify::stream_verdict::{Lag, StreamFinding, StreamKind};
        let followed = Followed {
            connects: 2,
            interruptions: vec!["the stream ended".into()],
            ..Followed::default()
        };
        let stream = StreamVerdict {
            delivered: 40,
            ours: 30,
            span_secs: 2.0,
            twice: 1,
            commit_lag: Lag {
                count: 30,
                p50_ms: 12.5,
                p99_ms: 80.0,
            },
            findings: vec![StreamFinding {
                kind: StreamKind::Twice,
                key: "verify-ab12-0-1".into(),
                detail: "write 4 arrived 2 times".into(),
            }],
            ..StreamVerdict::default()
        };
        let text = render_stream(&followed, &stream);
        assert!(
            text.contains("delivered: 40 changes (30 of this run) in 2.0 s, 20/s"),
            "{text}"
        );
        assert!(text.contains("p50 12.5 ms, p99 80.0 ms"), "{text}");
        assert!(text.contains("2 connection(s)"), "{text}");
        assert!(text.contains("interrupted: the stream ended"), "{text}");
        assert!(
            text.contains("Twice verify-ab12-0-1: write 4 arrived 2 times"),
            "{text}"
        );
        let ledger = Ledger::new("ab12");
        let line = line(&ledger, &Verdict::default(), Some(&stream));
        let json: Value = serde_json::from_str(line.strip_prefix("verify: ").unwrap()).unwrap();
        assert_eq!(json["holds"], false, "the stream's finding breaks the run");
        assert_eq!(json["stream"]["twice"], 1);
        assert_eq!(json["stream"]["lag_p99_ms"], 80.0);
        assert_eq!(json["stream"]["per_second"], 20.0);
    }

    #[test]
    fn the_file_reads_back() {
        let dir = std::env::temp_dir().join(format!("verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.json");
        let saved = Saved {
            host: "http://127.0.0.1:8080".into(),
            verdict: Verdict::default(),
            stream: Some(StreamVerdict {
                lost: 1,
                ..StreamVerdict::default()
            }),
            ledger: Ledger::new("ab12"),
        };
        assert!(!saved.holds(), "a stream that lost a write breaks the run");
        saved.write(&path).unwrap();
        let back = Saved::read(&path).unwrap();
        assert_eq!(back.ledger, saved.ledger);
        assert_eq!(back.host, saved.host);
        assert_eq!(back.stream, saved.stream);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
