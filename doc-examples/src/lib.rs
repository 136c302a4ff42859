//! The documents' marked examples, as `scripts/docs-examples.sh` runs them: each `curl`
//! in a shell block under a `<!-- run: STATUS ... -->` marker is run against a gateway,
//! and its answer compared with the one the document shows in `# ...` lines.
//!
//! The shell script extracts the examples, makes the databases and starts the gateway;
//! this crate is the comparison, which is logic (parsing JSON, patterns) rather than
//! plumbing. CONTRIBUTING.md ("Documents") tells authors how to write a shown answer.
//!
//! # Layout
//!
//! - [`answer`]: [`answer_diff`], how an answer differs from the one shown, and
//!   [`KNOWN_VERDICTS`], answers whose verdict is known, so a matcher that lets
//!   everything (or nothing) through is caught.
//! - `main.rs`: the `doc-examples` binary the script calls (`diff`, `known-verdicts`).

pub mod answer;

pub use answer::{answer_diff, KnownVerdict, Verdict, KNOWN_VERDICTS};
