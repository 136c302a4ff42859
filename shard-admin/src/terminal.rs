//! Output for people and for pipes: colour and progress bars only on a terminal, plain
//! stable lines in pipes and files. `NO_COLOR` set to any non-empty value
//! (<https://no-color.org>) turns colour off on a terminal too; the bars still draw,
//! uncoloured.

use std::io::IsTerminal;

/// Whether `NO_COLOR` asks for no colour: set, and not empty.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether what is written to `stream` may be coloured: it is a terminal and
/// `NO_COLOR` does not say otherwise.
pub fn colour(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && !no_color()
}

/// Whether progress bars are drawn: only when standard error, where they go, is a
/// terminal.
pub fn bars() -> bool {
    std::io::stderr().is_terminal()
}
