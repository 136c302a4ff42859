//! `doc-examples`: the answer matcher that `scripts/docs-examples.sh` and
//! `scripts/docs.sh check` call.
//!
//! ```text
//! doc-examples diff SHOWN ANSWER [FIELD ...]
//!     How the answer in the file ANSWER differs from the one shown in the file SHOWN
//!     (the `# ...` lines, without `# `), one line per difference on stdout; exit 0 when
//!     it matches, 1 when it differs. FIELD: the marker's `varies:` fields (a word may
//!     hold several, space-separated).
//! doc-examples known-verdicts
//!     The matcher on answers whose verdict is known; exit 1 when one is not as known.
//! ```
//!
//! Exit 2: a usage error or a file that cannot be read.

use std::process::ExitCode;

use doc_examples::{answer_diff, Verdict, KNOWN_VERDICTS};

const USAGE: &str =
    "usage: doc-examples diff SHOWN ANSWER [FIELD ...] | doc-examples known-verdicts";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["diff", shown, answer, varies @ ..] => diff(shown, answer, varies),
        ["known-verdicts"] => known_verdicts(),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn diff(shown: &str, answer: &str, varies: &[&str]) -> ExitCode {
    let (shown, answer) = match (read(shown), read(answer)) {
        (Ok(shown), Ok(answer)) => (shown, answer),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("doc-examples: {e}");
            return ExitCode::from(2);
        }
    };
    let varies: Vec<&str> = varies.iter().flat_map(|v| v.split_whitespace()).collect();
    let differences = answer_diff(&shown, &answer, &varies);
    for difference in &differences {
        println!("{difference}");
    }
    if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A file as text; a body that is not UTF-8 is read with replacement characters (and
/// so matches no shown answer that needs those bytes).
fn read(path: &str) -> Result<String, String> {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

fn known_verdicts() -> ExitCode {
    let mut wrong = 0;
    for (n, case) in KNOWN_VERDICTS.iter().enumerate() {
        if !case.holds() {
            let should = match case.verdict {
                Verdict::Match => "match",
                Verdict::Differ => "differ",
            };
            eprintln!(
                "answer matcher: case {} should {should} but does not: shown {:?}",
                n + 1,
                case.shown
            );
            wrong += 1;
        }
    }
    if wrong > 0 {
        return ExitCode::FAILURE;
    }
    println!("answer matcher: {} cases as expected", KNOWN_VERDICTS.len());
    ExitCode::SUCCESS
}
