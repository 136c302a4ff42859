//! Slot moves in progress, as the gateway last read them, in the Prometheus exposition.
//! The gateway passes them at scrape time; nothing is kept here.
//!
//! | family                        | type  | labels                      |
//! |-------------------------------|-------|-----------------------------|
//! | `shardgate_moves_active`      | gauge |                             |
//! | `shardgate_move_slots`        | gauge | move, source, target, phase |
//! | `shardgate_move_rows_to_copy` | gauge | move, source, target, phase |
//! | `shardgate_move_rows_copied`  | gauge | move, source, target, phase |
//! | `shardgate_move_rows_behind`  | gauge | move, source, target, phase |
//! | `shardgate_move_eta_seconds`  | gauge | move, source, target, phase |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{family, gauge};

/// One active move's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct MoveProgress {
    /// The move's id in the metadata database.
    pub id: i64,
    /// The shard giving the slots.
    pub source: u32,
    /// The shard taking them.
    pub target: u32,
    /// Where the move is: `capturing`, `copying`, `catching_up`, `switching`, `cleaning`.
    pub phase: String,
    /// How many slots move.
    pub slots: usize,
    /// Rows of the slots to copy (counted when the copy starts).
    pub rows_total: i64,
    /// Rows copied to the target so far.
    pub rows_copied: i64,
    /// Changes logged on the source, not yet replayed on the target.
    pub rows_behind: i64,
    /// Seconds until the copy ends at the rate so far (None: no rate yet).
    pub eta_secs: Option<f64>,
}

/// The per-move families: name, help, and the value (None: no sample).
type PerMove = (&'static str, &'static str, fn(&MoveProgress) -> Option<f64>);

const PER_MOVE: [PerMove; 5] = [
    (
        "shardgate_move_slots",
        "Slots a move takes from its source to its target.",
        |m| Some(m.slots as f64),
    ),
    (
        "shardgate_move_rows_to_copy",
        "Rows of the moving slots to copy.",
        |m| Some(m.rows_total as f64),
    ),
    (
        "shardgate_move_rows_copied",
        "Rows of the moving slots copied to the target so far.",
        |m| Some(m.rows_copied as f64),
    ),
    (
        "shardgate_move_rows_behind",
        "Changes logged on the source not yet replayed on the target.",
        |m| Some(m.rows_behind as f64),
    ),
    (
        "shardgate_move_eta_seconds",
        "Seconds until the copy ends at the rate so far (absent before a rate is known).",
        |m| m.eta_secs,
    ),
];

/// The move families: the count always, one sample per move in the others.
pub(crate) fn families(moves: &[MoveProgress]) -> Vec<MetricFamily> {
    let active = family(
        "shardgate_moves_active",
        "Slot moves not yet done or aborted.",
        MetricType::GAUGE,
        vec![gauge(&[], moves.len() as f64)],
    );
    let per_move = PER_MOVE.iter().map(|(name, help, value)| {
        let samples = moves
            .iter()
            .filter_map(|m| {
                let labels = labels(m);
                let pairs = labels.each_ref().map(|(name, v)| (*name, v.as_str()));
                value(m).map(|v| gauge(&pairs, v))
            })
            .collect();
        family(name, help, MetricType::GAUGE, samples)
    });
    std::iter::once(active)
        .chain(per_move)
        .filter(|family| !family.get_metric().is_empty())
        .collect()
}

fn labels(m: &MoveProgress) -> [(&'static str, String); 4] {
    [
        ("move", m.id.to_string()),
        ("source", m.source.to_string()),
        ("target", m.target.to_string()),
        ("phase", m.phase.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    fn copying(eta_secs: Option<f64>) -> MoveProgress {
        MoveProgress {
            id: 7,
            source: 0,
            target: 2,
            phase: "copying".into(),
            slots: 16,
            rows_total: 1000,
            rows_copied: 250,
            rows_behind: 3,
            eta_secs,
        }
    }

    #[test]
    fn no_move_is_a_zero_count_and_nothing_else() {
        let text = encode(&families(&[]));
        assert_eq!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["shardgate_moves_active 0"]
        );
    }

    #[test]
    fn each_move_is_one_labelled_sample_per_family() {
        let text = encode(&families(&[copying(Some(4.5))]));
        let labels = r#"{move="7",source="0",target="2",phase="copying"}"#;
        for line in [
            "shardgate_moves_active 1".to_owned(),
            format!("shardgate_move_slots{labels} 16"),
            format!("shardgate_move_rows_to_copy{labels} 1000"),
            format!("shardgate_move_rows_copied{labels} 250"),
            format!("shardgate_move_rows_behind{labels} 3"),
            format!("shardgate_move_eta_seconds{labels} 4.5"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(text.matches("# TYPE").count(), 6, "{text}");
        // Prometheus keeps `_total` for counters: every family here is a gauge.
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(line.ends_with(" gauge"), "{line}");
            assert!(
                !name.ends_with("_total"),
                "a gauge named as a counter: {line}"
            );
        }
    }

    #[test]
    fn an_unknown_eta_has_no_sample() {
        let text = encode(&families(&[copying(None)]));
        assert!(!text.contains("shardgate_move_eta_seconds"), "{text}");
    }
}
