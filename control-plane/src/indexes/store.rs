//! The wanted indexes (`query_indexes`) and how each shard's build ended
//! (`query_index_shards`), in the metadata database (a metadata migration makes them).

use tokio_postgres::Client;

use shard_manager::store::query_index::MAX_INDEXES_PER_TABLE;

use super::IndexError;

/// One wanted index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub name: String,
    pub table: String,
    pub fields: Vec<String>,
    /// A drop was asked: it is being dropped from every shard.
    pub dropping: bool,
    /// Each shard's recorded outcome: (shard, `building`|`valid`|`failed`, error).
    pub shards: Vec<(u32, String, Option<String>)>,
}

/// Records an index (`name` is a function of the table and fields). Asked again, the
/// same index is left as it is (a shard whose build failed is cleared, so it is built
/// there again); refused if the table has [`MAX_INDEXES_PER_TABLE`] already (two asked
/// at the same instant may both pass: the bound is checked by each insert alone), if
/// the name is another index's (a hash clash) or one being dropped.
pub async fn insert(
    client: &Client,
    name: &str,
    table: &str,
    fields: &[String],
) -> Result<(), IndexError> {
    let most = MAX_INDEXES_PER_TABLE as i64;
    let added = client
        .execute(
            "INSERT INTO query_indexes (name, table_name, fields) SELECT $1, $2, $3 \
             WHERE (SELECT count(*) FROM query_indexes WHERE table_name = $2) < $4 \
             ON CONFLICT (name) DO NOTHING",
            &[&name, &table, &fields, &most],
        )
        .await?;
    if added == 1 {
        return Ok(());
    }
    let Some(existing) = one(client, name).await? else {
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM query_indexes WHERE table_name = $1",
                &[&table],
            )
            .await?
            .get(0);
        if count >= most {
            return Err(IndexError::TooMany {
                table: table.to_owned(),
                most: MAX_INDEXES_PER_TABLE,
            });
        }
        return Err(IndexError::Dropping(name.to_owned()));
    };
    if existing.table != table || existing.fields != fields {
        return Err(IndexError::Exists {
            name: name.to_owned(),
            table: existing.table,
            fields: existing.fields,
        });
    }
    if existing.dropping {
        return Err(IndexError::Dropping(name.to_owned()));
    }
    client
        .execute(
            "DELETE FROM query_index_shards WHERE name = $1 AND state = 'failed'",
            &[&name],
        )
        .await?;
    Ok(())
}

/// Every wanted index (those being dropped too), by name.
pub async fn all(client: &Client) -> Result<Vec<IndexRow>, IndexError> {
    let rows = client
        .query(
            "SELECT i.name, i.table_name, i.fields, i.dropping, \
             COALESCE(array_agg(s.shard ORDER BY s.shard) FILTER (WHERE s.shard IS NOT NULL), '{}'), \
             COALESCE(array_agg(s.state ORDER BY s.shard) FILTER (WHERE s.shard IS NOT NULL), '{}'), \
             COALESCE(array_agg(s.error ORDER BY s.shard) FILTER (WHERE s.shard IS NOT NULL), '{}') \
             FROM query_indexes i LEFT JOIN query_index_shards s ON s.name = i.name \
             GROUP BY i.name ORDER BY i.name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let shards: Vec<i32> = r.get(4);
            let states: Vec<String> = r.get(5);
            let errors: Vec<Option<String>> = r.get(6);
            IndexRow {
                name: r.get(0),
                table: r.get(1),
                fields: r.get(2),
                dropping: r.get(3),
                shards: shards
                    .into_iter()
                    .zip(states)
                    .zip(errors)
                    .map(|((s, st), e)| (s as u32, st, e))
                    .collect(),
            }
        })
        .collect())
}

/// The index `name`, if wanted.
pub async fn one(client: &Client, name: &str) -> Result<Option<IndexRow>, IndexError> {
    Ok(all(client).await?.into_iter().find(|r| r.name == name))
}

/// Asks for `name` to be dropped from every shard; false: no such index.
pub async fn mark_dropping(client: &Client, name: &str) -> Result<bool, IndexError> {
    Ok(client
        .execute(
            "UPDATE query_indexes SET dropping = true WHERE name = $1",
            &[&name],
        )
        .await?
        == 1)
}

/// Records how a shard's build stands.
pub async fn set_shard(
    client: &Client,
    name: &str,
    shard: u32,
    state: &str,
    error: Option<&str>,
) -> Result<(), IndexError> {
    client
        .execute(
            "INSERT INTO query_index_shards (name, shard, state, error) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM query_indexes WHERE name = $1) \
             ON CONFLICT (name, shard) DO UPDATE SET state = $3, error = $4, updated_at = now()",
            &[&name, &(shard as i32), &state, &error],
        )
        .await?;
    Ok(())
}

/// Forgets an index gone from every shard.
pub async fn remove(client: &Client, name: &str) -> Result<(), IndexError> {
    client
        .execute(
            "DELETE FROM query_indexes WHERE name = $1 AND dropping",
            &[&name],
        )
        .await?;
    Ok(())
}
