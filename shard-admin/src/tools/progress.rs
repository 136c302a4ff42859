//! Progress bars for `seed` and `bench`: one per shard (or per client group) and a
//! total with rows/s and ETA; the one bar of a move or an import; an export's count; a
//! backup's stanzas. Drawn on stderr only when it is a terminal, so piped
//! output stays clean; uncoloured when `NO_COLOR` says so ([`crate::terminal`]).

use crate::terminal;
use crate::tools::plan::report::thousands;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

const TEMPLATE: &str =
    "{prefix:>10} [{bar:32.cyan/blue}] {human_pos:>9}/{human_len:9} {rate:>10} eta {eta:>4}";
const TOTAL_TEMPLATE: &str =
    "{prefix:>10} [{bar:32.green/white}] {human_pos:>9}/{human_len:9} {rate:>10} eta {eta:>4} {elapsed}";

/// Where bars draw: standard error on a terminal, nowhere otherwise.
fn target() -> ProgressDrawTarget {
    if terminal::bars() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar of `len` steps that draws only on a terminal.
fn bar(len: u64) -> ProgressBar {
    ProgressBar::with_draw_target(Some(len), target())
}

/// `template` as it is where colour is on, else [`plain`].
fn painted(template: &str) -> String {
    if terminal::colour(&std::io::stderr()) {
        template.to_owned()
    } else {
        plain(template)
    }
}

/// `template` without the colours of its placeholders: `{bar:32.cyan/blue}` becomes
/// `{bar:32}`.
fn plain(template: &str) -> String {
    let mut plain = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let placeholder = &rest[open..close];
        let kept = match placeholder.find(':') {
            Some(colon) => match placeholder[colon..].find('.') {
                Some(dot) => &placeholder[..colon + dot],
                None => placeholder,
            },
            None => placeholder,
        };
        plain.push_str(&rest[..open]);
        plain.push_str(kept);
        plain.push('}');
        rest = &rest[close + 1..];
    }
    plain.push_str(rest);
    plain
}

/// The style of `template`, painted only where colour is on.
fn with_template(template: &str) -> Result<ProgressStyle, indicatif::style::TemplateError> {
    ProgressStyle::with_template(&painted(template))
}

fn style(template: &str) -> ProgressStyle {
    with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", thousands(state.per_sec() as u64));
            },
        )
        .progress_chars("=> ")
}

/// The bar of a move or an import: its phase, rows copied of the total, rows/s, ETA,
/// and a message (changes behind).
pub fn phase_bar() -> ProgressBar {
    bar(0).with_style(
        with_template(
            "{prefix:>12} [{bar:32.cyan/blue}] {human_pos:>9}/{human_len:9} rows {per_sec:>12} eta {eta:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}

/// A set of bars with a total underneath.
pub struct Bars {
    _multi: MultiProgress,
    parts: Vec<ProgressBar>,
    total: ProgressBar,
}

impl Bars {
    /// One bar per `(label, length)`, and a total of all lengths.
    pub fn new(parts: &[(String, u64)]) -> Self {
        let multi = MultiProgress::with_draw_target(target());
        let parts: Vec<ProgressBar> = parts
            .iter()
            .map(|(label, len)| {
                multi
                    .add(ProgressBar::new(*len))
                    .with_style(style(TEMPLATE))
                    .with_prefix(label.clone())
            })
            .collect();
        let sum = parts.iter().filter_map(|b| b.length()).sum();
        let total = multi
            .add(ProgressBar::new(sum))
            .with_style(style(TOTAL_TEMPLATE))
            .with_prefix("total");
        Self {
            _multi: multi,
            parts,
            total,
        }
    }

    /// A single bar, without a total.
    pub fn single(label: &str, len: u64) -> Self {
        let multi = MultiProgress::with_draw_target(target());
        let bar = multi
            .add(ProgressBar::new(len))
            .with_style(style(TOTAL_TEMPLATE))
            .with_prefix(label.to_owned());
        Self {
            _multi: multi,
            parts: vec![bar],
            total: ProgressBar::hidden(),
        }
    }

    /// A handle that advances part `i` and the total together; cheap to clone and send
    /// to another thread.
    pub fn tracker(&self, i: usize) -> Tracker {
        Tracker {
            part: self
                .parts
                .get(i)
                .cloned()
                .unwrap_or_else(ProgressBar::hidden),
            total: self.total.clone(),
        }
    }

    /// Leaves the bars on screen, full.
    pub fn finish(&self) {
        self.parts.iter().for_each(ProgressBar::finish);
        self.total.finish();
    }
}

/// Advances one bar and the total.
#[derive(Clone)]
pub struct Tracker {
    part: ProgressBar,
    total: ProgressBar,
}

impl Tracker {
    pub fn inc(&self, n: u64) {
        self.part.inc(n);
        self.total.inc(n);
    }
}

/// A backup's bar: every stanza's copy as 100 steps, pgBackRest's percent within the
/// current one, and which stanza it is (drawn only on a terminal, like every bar here).
pub fn backup_bar() -> ProgressBar {
    // Length 1 until the first stanza says how many there are: drawn empty, not full.
    bar(1)
        .with_style(
            with_template("{prefix:>8} [{bar:32.cyan/blue}] {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
        .with_prefix("backup")
}

/// A count with no known end (an export's records): records so far, records/s, time.
pub fn counter_bar(label: &str) -> ProgressBar {
    ProgressBar::with_draw_target(None, target())
        .with_style(
            with_template("{prefix:>10} {spinner} {human_pos:>11} records {per_sec:>14} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        )
        .with_prefix(label.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_templates_keep_everything_but_the_colours() {
        assert_eq!(
            plain("{prefix:>10} [{bar:32.cyan/blue}] {human_pos:>9} eta {eta:>4} {msg}"),
            "{prefix:>10} [{bar:32}] {human_pos:>9} eta {eta:>4} {msg}"
        );
        assert_eq!(plain(TOTAL_TEMPLATE).matches('.').count(), 0);
        assert_eq!(plain("{spinner} {elapsed}"), "{spinner} {elapsed}");
        assert_eq!(plain("unclosed {"), "unclosed {");
    }
}
