//! The verdict for people and for scripts: a section after goose's report, one
//! machine-readable line (`verify: {...}`), and the `--verify-out` file holding the
//! verdict and the whole ledger, which `--verify-check` reads back later.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ledger::Ledger;
use super::verdict::Verdict;

/// Findings printed in the text section (all of them are in the file).
const SHOWN_FINDINGS: usize = 20;

/// The `--verify-out` file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Saved {
    /// The gateway the run went through.
    pub host: String,
    pub verdict: Verdict,
    pub ledger: Ledger,
}

impl Saved {
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
    if verdict.holds() {
        let _ = writeln!(
            out,
            "  verdict: holds: every acknowledged write is there, none applied twice, no \
             token read stale"
        );
    } else {
        let _ = writeln!(out, "  verdict: BROKEN");
        for f in verdict.findings.iter().take(SHOWN_FINDINGS) {
            let _ = writeln!(out, "    {:?} {}: {}", f.kind, f.key, f.detail);
        }
        if verdict.findings.len() > SHOWN_FINDINGS {
            let _ = writeln!(
                out,
                "    ... {} more (all in --verify-out)",
                verdict.findings.len() - SHOWN_FINDINGS
            );
        }
    }
    out
}

/// The one line scripts read: `verify: {"run": ..., "lost": 0, ...}`.
pub fn line(ledger: &Ledger, verdict: &Verdict) -> String {
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
        "holds": verdict.holds(),
    });
    format!("verify: {summary}")
}

#[cfg(test)]
mod tests {
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
        let line = line(&ledger, &verdict);
        let json: serde_json::Value =
            serde_json::from_str(line.strip_prefix("verify: ").unwrap()).unwrap();
        assert_eq!(json["lost"], 1);
        assert_eq!(json["holds"], false);
        let text = render(&ledger, &verdict);
        assert!(text.contains("1 records of 1 users"), "{text}");
        assert!(text.contains("lost: 1 | applied twice: 0"), "{text}");
        assert!(text.contains("Lost verify-ab12-0-1: missing"), "{text}");
    }

    #[test]
    fn the_file_reads_back() {
        let dir = std::env::temp_dir().join(format!("verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.json");
        let saved = Saved {
            host: "http://127.0.0.1:8080".into(),
            verdict: Verdict::default(),
            ledger: Ledger::new("ab12"),
        };
        saved.write(&path).unwrap();
        let back = Saved::read(&path).unwrap();
        assert_eq!(back.ledger, saved.ledger);
        assert_eq!(back.host, saved.host);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
