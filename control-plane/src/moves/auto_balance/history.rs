//! The balancer's lines in the map's history (action `balancer`, a note): the moves it
//! decided, read back at every check so the spacing and the hourly cap survive a change
//! of runner ([`Recent`]); which holds it writes ([`Journal`]); and writing a line.

use std::time::Duration;

use crate::map::meta;

/// The balancer's own moves as the map's history records them: its `move` lines,
/// written before each move runs, by this runner or by any runner before it. Read at
/// every check, so the spacing and the hourly cap survive a change of runner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    /// Slots the balancer decided to move in the last hour.
    pub slots_last_hour: u32,
    /// How long ago its last move was decided; `None`: never.
    pub since_last_move: Option<Duration>,
}

impl Recent {
    /// Reads the balancer's `move` lines from the map's history, their ages by the
    /// metadata server's clock (the runners' clocks never meet).
    pub async fn read(client: &tokio_postgres::Client) -> Result<Self, tokio_postgres::Error> {
        let row = client
            .query_one(
                "SELECT coalesce(sum(CASE WHEN jsonb_typeof(detail -> 'slots') = 'array'
                                          THEN jsonb_array_length(detail -> 'slots') END)
                                   FILTER (WHERE at > now() - interval '1 hour'), 0)::int8,
                        extract(epoch FROM now() - max(at))::float8
                   FROM map_history
                  WHERE note AND action = 'balancer' AND detail ->> 'decision' = 'move'",
                &[],
            )
            .await?;
        let slots: i64 = row.get(0);
        let since: Option<f64> = row.get(1);
        Ok(Self {
            slots_last_hour: u32::try_from(slots).unwrap_or(u32::MAX),
            since_last_move: since.map(|secs| Duration::from_secs_f64(secs.max(0.0))),
        })
    }
}

/// What the runner last wrote in the map's history: a move (and a failed one) always
/// gets a line, a hold only when its kind differs from the last line's, so "above the
/// mean for 12s of 60s" is written once as it starts, not at every check.
#[derive(Debug, Default)]
pub struct Journal {
    last: Option<&'static str>,
}

impl Journal {
    /// Whether a line of `kind` is written now (and, if so, it becomes the last).
    pub fn records(&mut self, kind: &'static str) -> bool {
        let always = matches!(kind, "move" | "move failed");
        if !always && self.last == Some(kind) {
            return false;
        }
        self.last = Some(kind);
        true
    }
}

/// Who writes the balancer's lines: the host, as an admin command's actor says it.
pub(super) fn actor() -> String {
    format!("balancer@{}", meta::host_name())
}

/// Writes one of the balancer's lines in the map's history; a line that cannot be
/// written is logged, never fatal to the runner.
pub(super) async fn note(
    client: &tokio_postgres::Client,
    summary: &str,
    detail: serde_json::Value,
) {
    if let Err(e) = meta::note(client, &actor(), "balancer", summary, detail).await {
        tracing::warn!(target: "balancer", error = %e, summary, "could not write the balancer's line in the map's history");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_writes_a_hold_when_its_kind_changes_and_every_move() {
        // A minute of checks as the runner sees them: balanced, a rise held for 60
        // checks, a move, spacing, then balanced again.
        let mut kinds: Vec<&'static str> = vec!["balanced"; 30];
        kinds.extend(std::iter::repeat_n("above the mean", 60));
        kinds.extend(["move", "move", "spacing", "spacing", "spacing"]);
        kinds.extend(std::iter::repeat_n("balanced", 100));
        let mut journal = Journal::default();
        let written: Vec<&str> = kinds.into_iter().filter(|k| journal.records(k)).collect();
        assert_eq!(
            written,
            [
                "balanced",
                "above the mean",
                "move",
                "move",
                "spacing",
                "balanced"
            ]
        );
        // After a move, the hold is written even when it is the kind before it.
        let mut journal = Journal::default();
        assert!(journal.records("spacing"));
        assert!(!journal.records("spacing"));
        assert!(journal.records("move"));
        assert!(journal.records("spacing"));
    }
}
