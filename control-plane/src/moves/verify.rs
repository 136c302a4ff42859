//! The check before a switch: per slot, the row count and a checksum of every row's
//! (table, key, id, version) on the source and on the target. The two are read at the
//! same time; under the fence nothing changes on the source meanwhile.

use std::collections::BTreeMap;

use super::shard_conn::ShardConn;
use super::MoveError;

/// One slot's rows: how many, and the sum of their 64-bit hashes.
pub type Digest = BTreeMap<i32, (i64, String)>;

async fn digest(conn: &ShardConn, slots: &[i32]) -> Result<Digest, MoveError> {
    let rows = conn
        .client
        .query(
            "SELECT slot, count(*),
                    coalesce(sum(hashtextextended(
                        table_name || chr(31) || shard_key || chr(31) || id || chr(31) || version::text,
                        0)::numeric), 0)::text
               FROM records WHERE slot = ANY($1) GROUP BY slot",
            &[&slots],
        )
        .await
        .map_err(conn.fail("verifying rows"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, i32>(0),
                (r.get::<_, i64>(1), r.get::<_, String>(2)),
            )
        })
        .collect())
}

/// The slots whose rows differ, described (empty: identical). Returns the rows checked.
pub async fn compare(
    source: &ShardConn,
    target: &ShardConn,
    slots: &[i32],
) -> Result<(i64, Vec<String>), MoveError> {
    let (a, b) = tokio::join!(digest(source, slots), digest(target, slots));
    let (a, b) = (a?, b?);
    Ok((a.values().map(|(n, _)| n).sum(), differences(&a, &b)))
}

/// Where two digests differ, slot by slot.
pub fn differences(source: &Digest, target: &Digest) -> Vec<String> {
    let none = (0, "0".to_string());
    let slots: std::collections::BTreeSet<i32> =
        source.keys().chain(target.keys()).copied().collect();
    slots
        .into_iter()
        .filter_map(|slot| {
            let s = source.get(&slot).unwrap_or(&none);
            let t = target.get(&slot).unwrap_or(&none);
            (s != t).then(|| match s.0 == t.0 {
                true => format!("slot {slot}: {} rows on both, checksums differ", s.0),
                false => format!(
                    "slot {slot}: {} rows on the source, {} on the target",
                    s.0, t.0
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_slot_that_differs() {
        let source: Digest = [
            (1, (3, "10".into())),
            (2, (1, "5".into())),
            (4, (2, "7".into())),
        ]
        .into();
        let target: Digest = [
            (1, (3, "10".into())),
            (2, (1, "6".into())),
            (3, (1, "9".into())),
        ]
        .into();
        assert_eq!(
            differences(&source, &target),
            vec![
                "slot 2: 1 rows on both, checksums differ".to_string(),
                "slot 3: 0 rows on the source, 1 on the target".to_string(),
                "slot 4: 2 rows on the source, 0 on the target".to_string(),
            ]
        );
        assert!(differences(&source, &source).is_empty());
    }
}
