//! Promotions as a gateway shows them: each failover or switchover the map's history
//! records ([`Promotion`]), the newest of them, and per shard how many there were and
//! the last one ([`PromotionLog`]). The control plane reads them from the metadata
//! database (`map::promotions`) whenever a gateway adopts a map whose terms changed,
//! so every gateway shows the same ones, recorded before it started included. Pure.

use serde::Serialize;

/// How many of the newest promotions a gateway keeps to show.
pub const RECENT_PROMOTIONS: usize = 20;

/// Why a shard's primary changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromotionKind {
    /// The primary was lost and its HA manager (or an operator) promoted a replica.
    Failover,
    /// A planned promotion (`shard-admin switchover`): the old primary was healthy.
    Switchover,
}

impl PromotionKind {
    /// Its name in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failover => "failover",
            Self::Switchover => "switchover",
        }
    }

    /// The kind a history line's action names (`failover`, `switchover`), if any.
    pub fn of_action(action: &str) -> Option<Self> {
        match action {
            "failover" => Some(Self::Failover),
            "switchover" => Some(Self::Switchover),
            _ => None,
        }
    }

    /// What the event line says happened.
    fn verb(self) -> &'static str {
        match self {
            Self::Failover => "failed over",
            Self::Switchover => "switched over",
        }
    }
}

/// One promotion, as the map's history recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Promotion {
    /// The shard whose primary changed.
    pub shard: u32,
    /// `failover` or `switchover`.
    pub kind: PromotionKind,
    /// The primary before (listed as a replica afterwards, to come back as one).
    #[schema(example = "127.0.0.1:25433")]
    pub from: String,
    /// The primary after.
    #[schema(example = "127.0.0.1:25533")]
    pub to: String,
    /// The shard's primary term from then on (one more than before).
    pub term: u64,
    /// The map version that recorded it.
    pub map_version: u64,
    /// When it was recorded, UTC (RFC 3339, milliseconds).
    #[schema(example = "2026-11-25T11:36:18.412Z")]
    pub at: String,
    /// How long it took, in milliseconds, when the record says. For a failover: from
    /// the recording gateway's first check that found the primary unable to take
    /// writes to the promotion stored in the map. That includes waiting for the HA
    /// manager to promote the replica; it does not include up to one
    /// `failover.check_ms` (plus the health monitor's interval) before that first
    /// check, nor the other gateways following (within about a second). For a
    /// switchover: the time its record gives (`took_ms`).
    pub took_ms: Option<u64>,
    /// The event in one line: "shard-1 failed over to 127.0.0.1:25533 in 4.2 s, term 3".
    pub line: String,
}

impl Promotion {
    /// The event with its line written.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shard: u32,
        kind: PromotionKind,
        from: String,
        to: String,
        term: u64,
        map_version: u64,
        at: String,
        took_ms: Option<u64>,
    ) -> Self {
        let line = line(shard, kind, &to, term, took_ms);
        Self {
            shard,
            kind,
            from,
            to,
            term,
            map_version,
            at,
            took_ms,
            line,
        }
    }
}

/// "shard-1 failed over to 127.0.0.1:25533 in 4.2 s, term 3" (no "in ..." when the
/// record does not say how long it took).
pub fn line(shard: u32, kind: PromotionKind, to: &str, term: u64, took_ms: Option<u64>) -> String {
    let took = took_ms.map_or(String::new(), |ms| format!(" in {}", duration(ms)));
    format!("shard-{shard} {} to {to}{took}, term {term}", kind.verb())
}

/// A duration for people: "850 ms", "4.2 s", "125 s".
fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..100_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} s", (ms + 500) / 1000),
    }
}

/// One shard's promotions: how many of each kind the history holds, and the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ShardPromotions {
    pub shard: u32,
    /// Failovers of the shard in the map's history.
    pub failovers: u64,
    /// Switchovers of the shard in the map's history.
    pub switchovers: u64,
    pub last: Promotion,
}

/// What a gateway knows of promotions, as last read from the map's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromotionLog {
    /// The newest ones (at most [`RECENT_PROMOTIONS`]), newest first.
    pub recent: Vec<Promotion>,
    /// Every shard that had one, by shard id.
    pub shards: Vec<ShardPromotions>,
    /// Whether the history has been read at all (false: nothing known yet, not
    /// "none happened").
    pub read: bool,
}

impl PromotionLog {
    /// The last promotion of `shard`, if the history holds one.
    pub fn last(&self, shard: u32) -> Option<&Promotion> {
        self.of(shard).map(|s| &s.last)
    }

    /// How many promotions of `kind` of `shard` the history holds.
    pub fn count(&self, shard: u32, kind: PromotionKind) -> u64 {
        self.of(shard).map_or(0, |s| match kind {
            PromotionKind::Failover => s.failovers,
            PromotionKind::Switchover => s.switchovers,
        })
    }

    fn of(&self, shard: u32) -> Option<&ShardPromotions> {
        self.shards.iter().find(|s| s.shard == shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_who_took_over_how_fast_and_the_term() {
        let l = line(1, PromotionKind::Failover, "127.0.0.1:25533", 3, Some(4234));
        assert_eq!(l, "shard-1 failed over to 127.0.0.1:25533 in 4.2 s, term 3");
        let l = line(0, PromotionKind::Switchover, "10.0.0.2:5432", 2, Some(412));
        assert_eq!(
            l,
            "shard-0 switched over to 10.0.0.2:5432 in 412 ms, term 2"
        );
        let l = line(2, PromotionKind::Failover, "h:1", 9, None);
        assert_eq!(l, "shard-2 failed over to h:1, term 9");
    }

    #[test]
    fn durations_keep_a_readable_precision() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(1000), "1.0 s");
        assert_eq!(duration(1501), "1.5 s");
        assert_eq!(duration(99_949), "99.9 s");
        assert_eq!(duration(125_400), "125 s");
    }

    #[test]
    fn actions_other_than_promotions_are_not_events() {
        assert_eq!(
            PromotionKind::of_action("failover"),
            Some(PromotionKind::Failover)
        );
        assert_eq!(
            PromotionKind::of_action("switchover"),
            Some(PromotionKind::Switchover)
        );
        assert_eq!(PromotionKind::of_action("assign"), None);
        assert_eq!(PromotionKind::of_action("Failover"), None);
    }

    #[test]
    fn the_log_answers_per_shard() {
        let p = Promotion::new(
            1,
            PromotionKind::Failover,
            "a:1".into(),
            "b:1".into(),
            2,
            7,
            "2026-11-25T11:36:18.412Z".into(),
            Some(1501),
        );
        assert_eq!(p.line, "shard-1 failed over to b:1 in 1.5 s, term 2");
        let log = PromotionLog {
            recent: vec![p.clone()],
            shards: vec![ShardPromotions {
                shard: 1,
                failovers: 3,
                switchovers: 1,
                last: p.clone(),
            }],
            read: true,
        };
        assert_eq!(log.last(1), Some(&p));
        assert_eq!(log.count(1, PromotionKind::Failover), 3);
        assert_eq!(log.count(1, PromotionKind::Switchover), 1);
        assert_eq!(log.last(0), None);
        assert_eq!(log.count(0, PromotionKind::Failover), 0);
    }
}
