//! The check before a cut-over: the source table's row count and the sum of every
//! row's 64-bit hash of (key, id) seeded with the hash of the row as JSON, against the same over the records of
//! the table on every shard (each counted on its owner only, so a slot half-way
//! through a move is not counted twice). Under the fence nothing changes on the
//! source meanwhile, and only the import writes these records.

use futures_util::future::try_join_all;

use super::shards::OWNED;
use super::source::Source;
use super::spec::SourceTable;
use super::ImportError;
use crate::moves::shard_conn::ShardConn;

/// Rows, and the sum of their hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub rows: i64,
    pub sum: i128,
}

fn shard_digest() -> String {
    format!(
        "SELECT count(*), coalesce(sum(hashtextextended(shard_key || chr(31) || id,
                                                       jsonb_hash_extended(data, 0))::numeric),
                                 0)::text
           FROM records WHERE table_name = $1 AND {OWNED}"
    )
}

fn parse_sum(text: &str) -> Result<i128, ImportError> {
    text.parse()
        .map_err(|_| ImportError::Corrupt(format!("a checksum {text:?} is not an integer")))
}

/// The source's digest, and how many of its rows have a NULL key or id.
pub async fn source(source: &Source, t: &SourceTable) -> Result<(Digest, i64), ImportError> {
    let row = source
        .client
        .query_one(&t.digest_sql(), &[])
        .await
        .map_err(source.fail("verifying rows"))?;
    let sum: String = row.get(2);
    Ok((
        Digest {
            rows: row.get(0),
            sum: parse_sum(&sum)?,
        },
        row.get(1),
    ))
}

/// The shards' digest of the records of `table`, summed.
pub async fn shards(conns: &[&ShardConn], table: &str) -> Result<Digest, ImportError> {
    let parts = try_join_all(conns.iter().map(|conn| async move {
        conn.client
            .query_one(&shard_digest(), &[&table])
            .await
            .map_err(conn.fail("verifying records"))
    }))
    .await?;
    let mut total = Digest { rows: 0, sum: 0 };
    for row in parts {
        let sum: String = row.get(1);
        total.rows += row.get::<_, i64>(0);
        total.sum += parse_sum(&sum)?;
    }
    Ok(total)
}

/// What differs, described (None: identical).
pub fn difference(source: Digest, nulls: i64, shards: Digest) -> Option<String> {
    if source == shards {
        return None;
    }
    let mut text = match source.rows == shards.rows {
        true => format!(
            "{} rows on both sides, but their checksums differ",
            source.rows
        ),
        false => format!(
            "{} rows in the source, {} records on the shards",
            source.rows, shards.rows
        ),
    };
    if nulls > 0 {
        text += &format!(" ({nulls} source rows have a NULL key or id and cannot be records)");
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_described() {
        let a = Digest { rows: 3, sum: 10 };
        assert_eq!(difference(a, 0, a), None);
        assert_eq!(
            difference(a, 0, Digest { rows: 3, sum: 11 }).unwrap(),
            "3 rows on both sides, but their checksums differ"
        );
        assert_eq!(
            difference(a, 1, Digest { rows: 2, sum: 10 }).unwrap(),
            "3 rows in the source, 2 records on the shards (1 source rows have a NULL key or id and cannot be records)"
        );
        assert_eq!(
            parse_sum("-92233720368547758070").unwrap(),
            -92233720368547758070
        );
    }
}
