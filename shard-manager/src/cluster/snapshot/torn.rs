//! Whether a set of shard snapshots tears a transaction decided `commit`, and which
//! shards must take theirs again if so. Pure; no I/O.
//!
//! Taken under the fence, the snapshots face a fixed set of transactions decided
//! `commit` whose parts may still be committing (no decision is written meanwhile, and
//! every part of a decided transaction was prepared before its decision). On a shard, a
//! part of such a transaction is visible in the shard's snapshot iff it was not in the
//! shard's list of prepared parts (read just before the snapshot: it had committed), or
//! it was listed and its transaction id is visible in the snapshot ([`PgSnapshot`]).
//! The transaction is torn when its part is visible on one shard of the cut and not on
//! another. A cut that tears none is consistent as it stands: a transaction invisible
//! on every shard simply commits after the cut.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::visibility::PgSnapshot;
use crate::cluster::txn::gid;
use crate::routing::ShardId;

/// One of our prepared parts, as a shard listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPart {
    /// Its name (`sg_<txid>_<shard>`).
    pub gid: String,
    /// `pg_prepared_xacts.transaction`: the part's 32-bit transaction id.
    pub xid: u32,
}

/// What a shard's list and snapshot showed.
#[derive(Debug, Clone, Copy)]
pub struct ShardView<'a> {
    pub prepared: &'a [PreparedPart],
    /// `pg_current_snapshot()`, as text.
    pub snapshot: &'a str,
}

/// The shards whose snapshots must be taken again, with a part each that is not yet
/// visible there (to finish by the log if it takes too long); empty when the cut tears
/// no transaction of `decided` (decided `commit`, with the shards each has parts on).
pub fn retake(
    views: &BTreeMap<ShardId, ShardView<'_>>,
    decided: &HashMap<String, Vec<ShardId>>,
) -> BTreeMap<ShardId, Vec<String>> {
    let snapshots: BTreeMap<ShardId, Option<PgSnapshot>> = views
        .iter()
        .map(|(id, v)| (*id, PgSnapshot::parse(v.snapshot)))
        .collect();
    // The decided transactions listed somewhere: (txid, shard) -> the part there.
    let mut listed: HashMap<(&str, ShardId), &PreparedPart> = HashMap::new();
    for (id, view) in views {
        for part in view.prepared {
            if let Some((txid, _)) = gid::parse(&part.gid) {
                if let Some((txid, _)) = decided.get_key_value(&txid) {
                    listed.insert((txid.as_str(), *id), part);
                }
            }
        }
    }
    let txids: BTreeSet<&str> = listed.keys().map(|(t, _)| *t).collect();
    let mut out: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
    for txid in txids {
        // Its shards in this cut: those the log names and those that listed a part.
        let mut shards: BTreeSet<ShardId> = decided
            .get(txid)
            .into_iter()
            .flatten()
            .copied()
            .filter(|s| views.contains_key(s))
            .collect();
        shards.extend(listed.keys().filter(|(t, _)| *t == txid).map(|(_, s)| *s));
        let seen: Vec<(ShardId, Option<bool>)> = shards
            .iter()
            .map(|s| {
                let seen = match listed.get(&(txid, *s)) {
                    None => Some(true),
                    Some(part) => snapshots
                        .get(s)
                        .and_then(|snap| snap.as_ref())
                        .and_then(|snap| snap.sees(part.xid)),
                };
                (*s, seen)
            })
            .collect();
        let unknown = seen.iter().any(|(_, v)| v.is_none());
        let visible = seen.iter().any(|(_, v)| *v == Some(true));
        let invisible = seen.iter().any(|(_, v)| *v == Some(false));
        let torn = unknown || (visible && invisible);
        if !torn {
            continue;
        }
        for (shard, v) in seen {
            if v != Some(true) {
                if let Some(part) = listed.get(&(txid, shard)) {
                    out.entry(shard).or_default().push(part.gid.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0123456789abcdef0123456789abcdef";
    const T2: &str = "fedcba9876543210fedcba9876543210";

    fn part(txid: &str, shard: u32, xid: u32) -> PreparedPart {
        PreparedPart {
            gid: gid::gid(txid, ShardId(shard)),
            xid,
        }
    }

    fn decided(list: &[(&str, &[u32])]) -> HashMap<String, Vec<ShardId>> {
        list.iter()
            .map(|(t, s)| (t.to_string(), s.iter().map(|s| ShardId(*s)).collect()))
            .collect()
    }

    fn views<'a>(
        list: &'a [(u32, Vec<PreparedPart>, &'a str)],
    ) -> BTreeMap<ShardId, ShardView<'a>> {
        list.iter()
            .map(|(id, prepared, snapshot)| (ShardId(*id), ShardView { prepared, snapshot }))
            .collect()
    }

    #[test]
    fn a_transaction_committed_on_one_shard_and_in_progress_on_the_other_is_torn() {
        // Shard 0 committed its part before the list; shard 1 listed it, in xip.
        let shards = vec![
            (0, vec![], "900:905:"),
            (1, vec![part(T1, 1, 800)], "800:810:800"),
        ];
        let out = retake(&views(&shards), &decided(&[(T1, &[0, 1])]));
        assert_eq!(out.len(), 1);
        assert_eq!(out[&ShardId(1)], vec![gid::gid(T1, ShardId(1))]);
    }

    #[test]
    fn listed_but_committed_before_the_snapshot_is_visible() {
        // Shard 1 listed the part, which committed before the snapshot (not in xip).
        let shards = vec![
            (0, vec![], "900:905:"),
            (1, vec![part(T1, 1, 800)], "801:810:801"),
        ];
        assert!(retake(&views(&shards), &decided(&[(T1, &[0, 1])])).is_empty());
    }

    #[test]
    fn in_progress_everywhere_is_not_torn() {
        let shards = vec![
            (0, vec![part(T1, 0, 700)], "700:705:700"),
            (1, vec![part(T1, 1, 800)], "790:810:800"),
            (2, vec![], "10:10:"),
        ];
        assert!(retake(&views(&shards), &decided(&[(T1, &[0, 1])])).is_empty());
    }

    #[test]
    fn a_shard_without_a_part_does_not_tear_it() {
        // The log says T1 is on shards 1 and 2: shard 0 not listing it says nothing.
        let shards = vec![
            (0, vec![], "900:905:"),
            (1, vec![part(T1, 1, 800)], "800:810:800"),
        ];
        assert!(retake(&views(&shards), &decided(&[(T1, &[1, 2])])).is_empty());
    }

    #[test]
    fn undecided_transactions_never_tear() {
        // T2 is listed on one shard only, but its decision is not `commit`.
        let shards = vec![
            (0, vec![], "900:905:"),
            (1, vec![part(T2, 1, 800)], "800:810:800"),
        ];
        assert!(retake(&views(&shards), &decided(&[(T1, &[0, 1])])).is_empty());
    }

    #[test]
    fn only_the_shards_where_it_is_invisible_are_taken_again() {
        let shards = vec![
            (0, vec![part(T1, 0, 700)], "701:705:"),
            (1, vec![part(T1, 1, 800)], "800:810:800"),
            (
                2,
                vec![part(T1, 2, 900), part(T2, 2, 901)],
                "900:910:900,901",
            ),
        ];
        let out = retake(&views(&shards), &decided(&[(T1, &[0, 1, 2]), (T2, &[2])]));
        assert_eq!(
            out.keys().copied().collect::<Vec<_>>(),
            vec![ShardId(1), ShardId(2)]
        );
        assert_eq!(out[&ShardId(2)], vec![gid::gid(T1, ShardId(2))]);
    }

    #[test]
    fn a_snapshot_that_cannot_be_read_is_taken_again() {
        let shards = vec![
            (0, vec![part(T1, 0, 700)], "not a snapshot"),
            (1, vec![part(T1, 1, 800)], "800:810:800"),
        ];
        let out = retake(&views(&shards), &decided(&[(T1, &[0, 1])]));
        assert!(out.contains_key(&ShardId(0)));
    }

    #[test]
    fn visibility_across_the_wraparound() {
        // Shard 0's part got a 32-bit id just before the wrap; its snapshot is past it.
        let epoch = 1u64 << 32;
        let torn = format!("{}:{}:{}", epoch - 5, epoch + 3, epoch - 2);
        let whole = format!("{}:{}:", epoch - 5, epoch + 3);
        let torn_shards = vec![
            (0, vec![part(T1, 0, u32::MAX - 1)], torn.as_str()),
            (1, vec![], "10:12:"),
        ];
        let out = retake(&views(&torn_shards), &decided(&[(T1, &[0, 1])]));
        assert_eq!(out.keys().copied().collect::<Vec<_>>(), vec![ShardId(0)]);
        let whole_shards = vec![
            (0, vec![part(T1, 0, u32::MAX - 1)], whole.as_str()),
            (1, vec![], "10:12:"),
        ];
        assert!(retake(&views(&whole_shards), &decided(&[(T1, &[0, 1])])).is_empty());
    }
}
