//! The names of a transaction's prepared parts: `sg_<txid>_<shard>`, the transaction id
//! (a UUID's 32 lowercase hex digits) and the shard. A recovery reads the transaction
//! back from the name to find its decision in the coordinator log. Pure; no I/O.

use crate::routing::ShardId;

/// A new transaction id.
pub fn new_txid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The prepared part's name for `txid` on `shard`.
pub fn gid(txid: &str, shard: ShardId) -> String {
    format!("sg_{txid}_{}", shard.0)
}

/// The transaction id and shard a prepared part's name holds; None for a name that is
/// not one of ours.
pub fn parse(gid: &str) -> Option<(String, ShardId)> {
    let rest = gid.strip_prefix("sg_")?;
    let (txid, shard) = rest.rsplit_once('_')?;
    let valid = txid.len() == 32
        && txid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    match valid {
        true => Some((txid.to_owned(), ShardId(shard.parse().ok()?))),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_reads_back_as_its_transaction_and_shard() {
        let txid = new_txid();
        let name = gid(&txid, ShardId(2));
        assert_eq!(name, format!("sg_{txid}_2"));
        assert_eq!(parse(&name), Some((txid.clone(), ShardId(2))));
        assert!(crate::wire::write::txn::valid_gid(&name));
    }

    #[test]
    fn other_names_are_not_ours() {
        assert_eq!(parse("sg_abc_1"), None);
        assert_eq!(parse("pg_0123456789abcdef0123456789abcdef_1"), None);
        assert_eq!(parse("sg_0123456789abcdef0123456789abcdef_x"), None);
        assert_eq!(parse("sg_0123456789ABCDEF0123456789abcdef_1"), None);
    }
}
