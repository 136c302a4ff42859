//! The keys in the metadata database: created (or adopted), listed, revoked, rotated,
//! limited, and read as the live table a gateway checks requests against. Every change
//! is one transaction that ends with a NOTIFY on [`CHANNEL`], so gateways reload within
//! milliseconds.
//!
//! The table, `api_keys`, and its limit columns are metadata migrations
//! (`metadata-migrations/`, applied by `map::schema`). A key is never deleted: revoking
//! (or rotating) stamps `revoked_at` and who did it, so the table is also the keys'
//! history. At most one live key has a given name.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, Row};

use super::limits::{KeyLimits, Limit, LimitArgs};
use super::name::KeyName;
use super::scope::Scopes;
use super::secret::{KeyHash, Secret};
use super::KeyError;

/// The channel a key change is announced on; gateways reload their key table on it.
pub const CHANNEL: &str = "shardgate_keys";

/// A live key as a gateway holds it (never its secret, only what it may do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub scopes: Scopes,
    /// The logical tables it may use; `None`: every table.
    pub tables: Option<Vec<String>>,
    /// Its own rate, burst and per-shard concurrency; each default follows `[limits]`.
    pub limits: KeyLimits,
}

impl ApiKey {
    /// Whether this key may read or write `table`.
    pub fn may_use(&self, table: &str) -> bool {
        self.tables
            .as_ref()
            .is_none_or(|t| t.iter().any(|name| name == table))
    }
}

/// The live keys, by hash: what a gateway looks a presented key up in.
pub type KeyTable = HashMap<KeyHash, Arc<ApiKey>>;

/// What `keys create` asks for, parsed.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: KeyName,
    pub scopes: Scopes,
    pub tables: Option<Vec<String>>,
    pub limits: KeyLimits,
}

/// One key as `keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub name: String,
    pub scopes: String,
    pub tables: Option<Vec<String>>,
    pub limits: KeyLimits,
    /// The first hex digits of its hash: tells two keys of one name apart.
    pub fingerprint: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

const UTC: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

/// Stores a new key and returns its secret, which exists nowhere else.
pub async fn create(client: &mut Client, key: &NewKey, actor: &str) -> Result<Secret, KeyError> {
    let tx = client.transaction().await?;
    let secret = Secret::generate();
    insert(&tx, key, &secret, actor, None).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(secret)
}

/// What [`adopt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// The key was stored.
    Stored,
    /// A live key of that name with this secret was there already: nothing changed.
    AlreadyThere,
    /// This secret was a key once, since revoked (or rotated away): it stays revoked,
    /// nothing changed.
    Revoked {
        name: String,
        at: String,
        by: String,
    },
}

/// Stores `key` with a secret its operator made (`shard-admin keys adopt`), as
/// [`create`] stores a generated one. Asked again with the same name and secret, it
/// changes nothing (a Job that runs at every upgrade), and a secret once revoked is
/// never live again. A live key of that name with another secret, or this secret live
/// under another name, is refused ([`KeyError::Invalid`]).
pub async fn adopt(
    client: &mut Client,
    key: &NewKey,
    secret: &Secret,
    actor: &str,
) -> Result<Adopted, KeyError> {
    let tx = client.transaction().await?;
    let hash = secret.hash();
    let known = tx
        .query_opt(
            &format!(
                "SELECT name, to_char(revoked_at AT TIME ZONE 'UTC', {UTC}), revoked_by
                   FROM api_keys WHERE hash = $1"
            ),
            &[&hash.0.as_slice()],
        )
        .await?;
    if let Some(row) = known {
        let name: String = row.get(0);
        return match row.get::<_, Option<String>>(1) {
            Some(at) => Ok(Adopted::Revoked {
                name,
                at,
                by: row.get::<_, Option<String>>(2).unwrap_or_default(),
            }),
            None if name == key.name.as_str() => Ok(Adopted::AlreadyThere),
            None => Err(KeyError::Invalid(format!(
                "this key is live already, named {name:?}: adopt it under that name, or revoke it first"
            ))),
        };
    }
    let taken = tx
        .query_opt(
            "SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL",
            &[&key.name.as_str()],
        )
        .await?;
    if taken.is_some() {
        return Err(KeyError::Invalid(format!(
            "a live key is already named {:?}, with another secret: revoke it to adopt this one, or give the secret it has",
            key.name.as_str()
        )));
    }
    insert(&tx, key, secret, actor, None).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(Adopted::Stored)
}

/// Revokes the live key named `name`; returns it as it was.
pub async fn revoke(client: &mut Client, name: &KeyName, actor: &str) -> Result<NewKey, KeyError> {
    let tx = client.transaction().await?;
    let (_, old) = revoke_in(&tx, name, actor).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok(old)
}

/// Replaces the live key named `name` by a new secret with the same scopes, tables and
/// limits; the old one is revoked in the same transaction.
pub async fn rotate(
    client: &mut Client,
    name: &KeyName,
    actor: &str,
) -> Result<(NewKey, Secret), KeyError> {
    let tx = client.transaction().await?;
    let (id, old) = revoke_in(&tx, name, actor).await?;
    let secret = Secret::generate();
    insert(&tx, &old, &secret, actor, Some(id)).await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok((old, secret))
}

/// Changes the limits of the live key named `name`: each option given replaces that
/// limit, the others stay. Returns the limits before and after.
pub async fn set_limits(
    client: &mut Client,
    name: &KeyName,
    args: &LimitArgs,
) -> Result<(KeyLimits, KeyLimits), KeyError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT {LIMIT_COLUMNS} FROM api_keys
                  WHERE name = $1 AND revoked_at IS NULL FOR UPDATE"
            ),
            &[&name.as_str()],
        )
        .await?
        .ok_or_else(|| KeyError::NoSuchKey(name.to_string()))?;
    let before = limits_at(&row, 0).map_err(KeyError::Corrupt)?;
    let after = args.apply(before).map_err(KeyError::Invalid)?;
    tx.execute(
        "UPDATE api_keys SET rate_per_sec = $2, burst = $3, concurrency = $4
          WHERE name = $1 AND revoked_at IS NULL",
        &[
            &name.as_str(),
            &after.rate.to_column(),
            &after.burst.to_column(),
            &after.concurrency.to_column(),
        ],
    )
    .await?;
    notify(&tx).await?;
    tx.commit().await?;
    Ok((before, after))
}

/// Every key (with `all`, the revoked ones too), by name then age.
pub async fn list(client: &Client, all: bool) -> Result<Vec<KeyRow>, KeyError> {
    let sql = format!(
        "SELECT name, scopes, tables, hash, to_char(created_at AT TIME ZONE 'UTC', {UTC}),
                created_by, to_char(revoked_at AT TIME ZONE 'UTC', {UTC}), revoked_by,
                {LIMIT_COLUMNS}
           FROM api_keys WHERE $1 OR revoked_at IS NULL ORDER BY name, id"
    );
    let rows = client.query(&sql, &[&all]).await?;
    rows.iter()
        .map(|r| {
            let scopes: Vec<String> = r.get(1);
            let hash: Vec<u8> = r.get(3);
            Ok(KeyRow {
                name: r.get(0),
                scopes: scopes.join(","),
                tables: r.get(2),
                limits: limits_at(r, 8).map_err(KeyError::Corrupt)?,
                fingerprint: KeyHash::from_slice(&hash).map_or("?".into(), |h| h.fingerprint()),
                created_at: r.get(4),
                created_by: r.get(5),
                revoked_at: r.get(6),
                revoked_by: r.get(7),
            })
        })
        .collect()
}

/// The live keys. A metadata database without the keys' table (its schema predates
/// them) has none. A row that cannot be read is left out (and logged): it grants
/// nothing rather than stopping every other key.
///
/// A table without the limit columns (the migration that adds them has not run yet:
/// gateways upgraded before any admin command) is read with every limit at its default.
pub async fn live(client: &Client) -> Result<KeyTable, KeyError> {
    let query = |limits: &str| {
        format!(
            "SELECT hash, name, scopes, tables, {limits} FROM api_keys WHERE revoked_at IS NULL"
        )
    };
    let rows = match client.query(&query(LIMIT_COLUMNS), &[]).await {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => return Ok(KeyTable::new()),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_COLUMN) => {
            client
                .query(&query("NULL::int, NULL::int, NULL::int"), &[])
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut table = KeyTable::with_capacity(rows.len());
    for row in &rows {
        match live_key(row) {
            Ok((hash, key)) => {
                table.insert(hash, Arc::new(key));
            }
            Err(why) => tracing::warn!(key = row.get::<_, String>(1), why, "api key ignored"),
        }
    }
    Ok(table)
}

fn live_key(row: &Row) -> Result<(KeyHash, ApiKey), String> {
    let hash: Vec<u8> = row.get(0);
    let hash = KeyHash::from_slice(&hash).ok_or("its hash is not 32 bytes")?;
    let scopes: Vec<String> = row.get(2);
    Ok((
        hash,
        ApiKey {
            name: row.get(1),
            scopes: Scopes::from_names(&scopes)?,
            tables: row.get(3),
            limits: limits_at(row, 4)?,
        },
    ))
}

/// The three limit columns, in the order [`limits_at`] reads them.
const LIMIT_COLUMNS: &str = "rate_per_sec, burst, concurrency";

/// The limits in [`LIMIT_COLUMNS`] from column `first` of `row` on.
fn limits_at(row: &Row, first: usize) -> Result<KeyLimits, String> {
    Ok(KeyLimits {
        rate: Limit::from_column("rate_per_sec", row.get(first))?,
        burst: Limit::from_column("burst", row.get(first + 1))?,
        concurrency: Limit::from_column("concurrency", row.get(first + 2))?,
    })
}

async fn insert(
    tx: &impl GenericClient,
    key: &NewKey,
    secret: &Secret,
    actor: &str,
    replaces: Option<i64>,
) -> Result<(), KeyError> {
    let inserted = tx
        .execute(
            "INSERT INTO api_keys (name, hash, scopes, tables, created_by, replaces,
                                   rate_per_sec, burst, concurrency)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &key.name.as_str(),
                &secret.hash().0.as_slice(),
                &key.scopes.names(),
                &key.tables,
                &actor,
                &replaces,
                &key.limits.rate.to_column(),
                &key.limits.burst.to_column(),
                &key.limits.concurrency.to_column(),
            ],
        )
        .await;
    match inserted {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && replaces.is_none() => {
            Err(KeyError::NameTaken(key.name.to_string()))
        }
        other => Ok(other.map(drop)?),
    }
}

async fn revoke_in(
    tx: &impl GenericClient,
    name: &KeyName,
    actor: &str,
) -> Result<(i64, NewKey), KeyError> {
    let row = tx
        .query_opt(
            "UPDATE api_keys SET revoked_at = now(), revoked_by = $2
              WHERE name = $1 AND revoked_at IS NULL
          RETURNING id, scopes, tables, rate_per_sec, burst, concurrency",
            &[&name.as_str(), &actor],
        )
        .await?
        .ok_or_else(|| KeyError::NoSuchKey(name.to_string()))?;
    let scopes: Vec<String> = row.get(1);
    let key = NewKey {
        name: name.clone(),
        scopes: Scopes::from_names(&scopes).map_err(KeyError::Corrupt)?,
        tables: row.get(2),
        limits: limits_at(&row, 3).map_err(KeyError::Corrupt)?,
    };
    Ok((row.get(0), key))
}

async fn notify(tx: &impl GenericClient) -> Result<(), KeyError> {
    tx.execute(&format!("NOTIFY {CHANNEL}"), &[]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_limited_to_tables_may_use_only_those() {
        let mut key = ApiKey {
            name: "k".into(),
            scopes: Scopes::parse("read").unwrap(),
            tables: None,
            limits: KeyLimits::default(),
        };
        assert!(key.may_use("users"));
        key.tables = Some(vec!["orders".into()]);
        assert!(key.may_use("orders"));
        assert!(!key.may_use("users"));
    }
}
