//! The failovers and switchovers of the map's history, read for a gateway to show
//! (`/api/health`, `/api/shards`, `/metrics`, the dashboard). Each promotion is a
//! history line whose action is `failover` or `switchover` and whose `detail` (JSONB)
//! holds `shard`, `from`, `to`, `term` and how long it took (`took_ms`, or the
//! failover watcher's `detected_ms`): the structured fields are read, never the
//! summary's text.

use serde_json::Value;
use tokio_postgres::Client;

use super::MapError;
use shard_manager::live_map::promotions::{
    Promotion, PromotionKind, PromotionLog, ShardPromotions, RECENT_PROMOTIONS,
};

/// Why a history line could not be read as a promotion.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PromotionRowError {
    #[error("action {0:?} is neither failover nor switchover")]
    NotAPromotion(String),
    #[error("detail.{0} is missing or not a {1}")]
    Field(&'static str, &'static str),
}

/// A promotion from one history line (pure): its version, time (UTC text), action and
/// detail.
pub fn promotion_from_row(
    version: u64,
    at: String,
    action: &str,
    detail: &Value,
) -> Result<Promotion, PromotionRowError> {
    let kind = PromotionKind::of_action(action)
        .ok_or_else(|| PromotionRowError::NotAPromotion(action.to_owned()))?;
    let number = |field: &'static str| {
        detail
            .get(field)
            .and_then(Value::as_u64)
            .ok_or(PromotionRowError::Field(field, "whole number"))
    };
    let text = |field: &'static str| {
        detail
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(PromotionRowError::Field(field, "string"))
    };
    let shard = u32::try_from(number("shard")?)
        .map_err(|_| PromotionRowError::Field("shard", "shard id"))?;
    let took_ms = ["took_ms", "detected_ms"]
        .iter()
        .find_map(|f| detail.get(*f).and_then(Value::as_u64));
    Ok(Promotion::new(
        shard,
        kind,
        text("from")?,
        text("to")?,
        number("term")?,
        version,
        at,
        took_ms,
    ))
}

/// The promotions the history holds: the newest [`RECENT_PROMOTIONS`], and per shard
/// the count and the last one. A line that cannot be read is logged and left out.
pub async fn load(client: &Client) -> Result<PromotionLog, MapError> {
    const COLUMNS: &str = "version,
        to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
        action, detail::text";
    let recent = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM map_history
                  WHERE action IN ('failover', 'switchover')
                  ORDER BY version DESC LIMIT $1"
            ),
            &[&(RECENT_PROMOTIONS as i64)],
        )
        .await
        .map_err(MapError::from_query)?;
    let per_shard = client
        .query(
            &format!(
                "SELECT DISTINCT ON (detail ->> 'shard') {COLUMNS},
                        count(*) FILTER (WHERE action = 'failover') OVER shard,
                        count(*) FILTER (WHERE action = 'switchover') OVER shard
                   FROM map_history
                  WHERE action IN ('failover', 'switchover')
                 WINDOW shard AS (PARTITION BY detail ->> 'shard')
                  ORDER BY detail ->> 'shard', version DESC"
            ),
            &[],
        )
        .await
        .map_err(MapError::from_query)?;
    let mut shards: Vec<ShardPromotions> = per_shard
        .iter()
        .filter_map(|r| {
            let last = read_row(r)?;
            let count = |i| r.get::<_, i64>(i).max(0) as u64;
            Some(ShardPromotions {
                shard: last.shard,
                failovers: count(4),
                switchovers: count(5),
                last,
            })
        })
        .collect();
    shards.sort_by_key(|s| s.shard);
    Ok(PromotionLog {
        recent: recent.iter().filter_map(read_row).collect(),
        shards,
        read: true,
    })
}

fn read_row(row: &tokio_postgres::Row) -> Option<Promotion> {
    let version = row.get::<_, i64>(0) as u64;
    let detail: String = row.get(3);
    let parsed = serde_json::from_str::<Value>(&detail)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            promotion_from_row(version, row.get(1), row.get(2), &d).map_err(|e| e.to_string())
        });
    match parsed {
        Ok(p) => Some(p),
        Err(error) => {
            tracing::warn!(version, %error, "a promotion in the map's history cannot be read; left out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AT: &str = "2026-11-25T11:36:18.412Z";

    #[test]
    fn a_failover_line_becomes_an_event_with_the_watchers_time() {
        // The detail `failover::record::promote` stores.
        let detail = json!({
            "shard": 1, "from": "127.0.0.1:25433", "to": "127.0.0.1:25533",
            "term": 3, "detected_ms": 4234,
        });
        let p = promotion_from_row(12, AT.into(), "failover", &detail).unwrap();
        assert_eq!(p.shard, 1);
        assert_eq!(p.kind, PromotionKind::Failover);
        assert_eq!(
            (p.from.as_str(), p.to.as_str()),
            ("127.0.0.1:25433", "127.0.0.1:25533")
        );
        assert_eq!((p.term, p.map_version, p.at.as_str()), (3, 12, AT));
        assert_eq!(p.took_ms, Some(4234));
        assert_eq!(
            p.line,
            "shard-1 failed over to 127.0.0.1:25533 in 4.2 s, term 3"
        );
    }

    #[test]
    fn a_switchover_line_reads_the_same_way_and_its_took_ms_wins() {
        let detail = json!({
            "shard": 0, "from": "a:1", "to": "b:2", "term": 2,
            "took_ms": 380, "detected_ms": 9999,
        });
        let p = promotion_from_row(5, AT.into(), "switchover", &detail).unwrap();
        assert_eq!(p.kind, PromotionKind::Switchover);
        assert_eq!(p.took_ms, Some(380));
        assert_eq!(p.line, "shard-0 switched over to b:2 in 380 ms, term 2");
        let untimed = json!({"shard": 0, "from": "a:1", "to": "b:2", "term": 2});
        let p = promotion_from_row(5, AT.into(), "switchover", &untimed).unwrap();
        assert_eq!(p.took_ms, None);
        assert_eq!(p.line, "shard-0 switched over to b:2, term 2");
    }

    #[test]
    fn other_lines_and_broken_details_are_refused_by_name() {
        let good = json!({"shard": 1, "from": "a:1", "to": "b:1", "term": 2});
        assert_eq!(
            promotion_from_row(3, AT.into(), "assign", &good),
            Err(PromotionRowError::NotAPromotion("assign".into()))
        );
        let no_to = json!({"shard": 1, "from": "a:1", "term": 2});
        assert_eq!(
            promotion_from_row(3, AT.into(), "failover", &no_to),
            Err(PromotionRowError::Field("to", "string"))
        );
        let text_term = json!({"shard": 1, "from": "a:1", "to": "b:1", "term": "2"});
        assert_eq!(
            promotion_from_row(3, AT.into(), "failover", &text_term),
            Err(PromotionRowError::Field("term", "whole number"))
        );
        let huge = json!({"shard": 1u64 << 40, "from": "a:1", "to": "b:1", "term": 2});
        assert_eq!(
            promotion_from_row(3, AT.into(), "failover", &huge),
            Err(PromotionRowError::Field("shard", "shard id"))
        );
    }
}
