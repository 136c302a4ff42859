//! Output for people and for pipes: colour and progress bars only on a terminal, plain
//! stable lines in pipes and files. `NO_COLOR` set to any non-empty value
//! (<https://no-color.org>) turns colour off on a terminal too; the bars still draw,
//! uncoloured. The colour rule is the log lines' own ([`colour`], the `telemetry`
//! crate's), so bars and lines never disagree.

use std::io::IsTerminal;

pub use telemetry::colour;

/// Whether progress bars are drawn: only when standard error, where they go, is a
/// terminal.
pub fn bars() -> bool {
    std::io::stderr().is_terminal()
}
