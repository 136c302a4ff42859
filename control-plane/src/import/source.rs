//! The source database of an import: one connection (time zone UTC, so every row's
//! JSON is the same text each time it is read), the table resolved from its catalog,
//! the checks before anything is recorded, the capture and freeze triggers, and the
//! change log.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::{Client, NoTls, Row};

use super::spec::{self, Column, SourceTable};
use super::ImportError;

/// A row as it becomes a record: key and id as text, the row as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub key: String,
    pub id: String,
    pub data: String,
}

/// One logged change: which (key, id) to look at again (NULL when the row had none).
#[derive(Debug, Clone)]
pub struct Logged {
    pub seq: i64,
    pub key: Option<String>,
    pub id: Option<String>,
}

/// The connection to the source, and how it is named in messages (no password).
pub struct Source {
    pub client: Client,
    pub name: String,
}

/// `postgres://user@host:port/db` of a connection string, without its password.
pub fn redact(url: &str) -> Result<String, ImportError> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| {
        ImportError::Refused(format!(
            "--source is not a PostgreSQL connection string: {e}"
        ))
    })?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Ok(format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    ))
}

impl Source {
    pub async fn connect(url: &str) -> Result<Self, ImportError> {
        let name = redact(url)?;
        let fail = |reason: String| ImportError::Source {
            source_db: name.clone(),
            doing: "connecting",
            reason,
        };
        let connecting = tokio_postgres::connect(url, NoTls);
        let (client, connection) = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .map_err(|_| fail("no answer within 10 s".into()))?
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "import source connection ended");
            }
        });
        let source = Self { client, name };
        source
            .client
            .batch_execute("SET TimeZone = 'UTC'; SET client_min_messages = warning")
            .await
            .map_err(source.fail("setting the session"))?;
        Ok(source)
    }

    /// Names the source and the step in a query error.
    pub fn fail(&self, doing: &'static str) -> impl Fn(tokio_postgres::Error) -> ImportError + '_ {
        move |e| ImportError::Source {
            source_db: self.name.clone(),
            doing,
            reason: match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => e.to_string(),
            },
        }
    }

    /// The table (`name` or `schema.name`, resolved as `to_regclass` does) and its key
    /// and id columns, or a refusal saying which does not exist or cannot key.
    pub async fn resolve(
        &self,
        table: &str,
        key: &str,
        id: &str,
    ) -> Result<SourceTable, ImportError> {
        let found = self
            .client
            .query_opt(
                "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')",
                &[&table],
            )
            .await
            .map_err(self.fail("reading the catalog"))?
            .ok_or_else(|| {
                ImportError::Refused(format!("the source {} has no table {table:?}", self.name))
            })?;
        let oid: u32 = found.get(0);
        Ok(SourceTable {
            schema: found.get(1),
            table: found.get(2),
            key: self.column(oid, table, key).await?,
            id: self.column(oid, table, id).await?,
        })
    }

    /// A column of the table, if its type can key.
    async fn column(&self, oid: u32, table: &str, name: &str) -> Result<Column, ImportError> {
        let row = self
            .client
            .query_opt(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
                  WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                &[&oid, &name],
            )
            .await
            .map_err(self.fail("reading the catalog"))?
            .ok_or_else(|| {
                ImportError::Refused(format!("table {table:?} has no column {name:?}"))
            })?;
        let column = Column {
            name: row.get(0),
            type_name: row.get(1),
        };
        if !spec::type_allowed(&column.type_name) {
            return Err(ImportError::Refused(format!(
                "column {name:?} is {}; a key or id column must be one of {} (their text is the same in every session)",
                column.type_name,
                spec::KEY_TYPES.join(", ")
            )));
        }
        Ok(column)
    }
    /// Refuses a table whose rows cannot all become records: a NULL, empty or too long
    /// key or id, or one (key, id) held by two rows.
    pub async fn check_rows(&self, t: &SourceTable) -> Result<(), ImportError> {
        let bad = self
            .client
            .query(&t.unplaceable_sql(), &[&3i64])
            .await
            .map_err(self.fail("checking the rows"))?;
        if !bad.is_empty() {
            let named: Vec<String> = bad
                .iter()
                .map(|r| {
                    format!(
                        "(key {:?}, id {:?})",
                        r.get::<_, Option<String>>(0),
                        r.get::<_, Option<String>>(1)
                    )
                })
                .collect();
            return Err(ImportError::Refused(format!(
                "{} has rows with a NULL or empty key or id, or a key over 256 bytes, e.g. {}: fix them first",
                t.display(),
                named.join(", ")
            )));
        }
        if let Some(r) = self
            .client
            .query_opt(&t.duplicate_sql(), &[])
            .await
            .map_err(self.fail("checking the rows"))?
        {
            return Err(ImportError::Refused(format!(
                "in {}, key {:?} with id {:?} is held by more than one row: (key, id) must name one row; choose another --id-column",
                t.display(),
                r.get::<_, String>(0),
                r.get::<_, String>(1)
            )));
        }
        Ok(())
    }

    pub async fn count(&self, t: &SourceTable) -> Result<i64, ImportError> {
        let row = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}", t.qualified()), &[])
            .await
            .map_err(self.fail("counting rows"))?;
        Ok(row.get(0))
    }

    /// Installs (or re-installs, atomically) import `id`'s capture.
    pub async fn capture(&self, t: &SourceTable, id: i64) -> Result<(), ImportError> {
        let sql = format!("BEGIN; {} {} COMMIT;", spec::LOG_SQL, t.capture_sql(id));
        self.batch(&sql, "installing the change capture").await
    }

    /// Whether the table carries import `id`'s trigger of that suffix.
    pub async fn has_trigger(
        &self,
        t: &SourceTable,
        id: i64,
        suffix: &str,
    ) -> Result<bool, ImportError> {
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger
                                 WHERE tgrelid = to_regclass($1) AND tgname = $2)",
                &[&t.qualified(), &spec::trigger_name(id, suffix)],
            )
            .await
            .map_err(self.fail("reading the catalog"))?;
        Ok(row.get(0))
    }

    /// Removes import `id`'s capture and log (abort).
    pub async fn release(&self, t: &SourceTable, id: i64) -> Result<(), ImportError> {
        let sql = format!("BEGIN; {} {} COMMIT;", spec::LOG_SQL, t.release_sql(id));
        self.batch(&sql, "removing the change capture").await
    }

    async fn batch(&self, sql: &str, doing: &'static str) -> Result<(), ImportError> {
        if let Err(e) = self.client.batch_execute(sql).await {
            let _ = self.client.batch_execute("ROLLBACK").await;
            return Err(self.fail(doing)(e));
        }
        Ok(())
    }

    /// The next page of the copy: up to `limit` rows after `after` (id, key).
    pub async fn page(
        &self,
        t: &SourceTable,
        after: Option<&(String, String)>,
        limit: i64,
    ) -> Result<Vec<SourceRow>, ImportError> {
        let rows = match after {
            None => self.client.query(&t.first_page_sql(), &[&limit]).await,
            Some((id, key)) => {
                self.client
                    .query(&t.next_page_sql(), &[id, key, &limit])
                    .await
            }
        }
        .map_err(self.fail("reading rows"))?;
        rows.iter().map(|r| source_row(t, r)).collect()
    }

    /// Up to `limit` logged changes of import `id`, oldest first.
    pub async fn logged(&self, id: i64, limit: i64) -> Result<Vec<Logged>, ImportError> {
        let rows = self
            .client
            .query(
                "SELECT seq, shard_key, id FROM shardgate_import.log
                  WHERE import = $1 ORDER BY seq LIMIT $2",
                &[&id, &limit],
            )
            .await
            .map_err(self.fail("reading the change log"))?;
        Ok(rows
            .iter()
            .map(|r| Logged {
                seq: r.get(0),
                key: r.get(1),
                id: r.get(2),
            })
            .collect())
    }

    /// How many changes of import `id` are logged and not yet replayed.
    pub async fn backlog(&self, id: i64) -> Result<i64, ImportError> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM shardgate_import.log WHERE import = $1",
                &[&id],
            )
            .await
            .map_err(self.fail("reading the change log"))?;
        Ok(row.get(0))
    }

    /// The current rows of these (key, id) pairs (absent: deleted).
    pub async fn lookup(
        &self,
        t: &SourceTable,
        keys: &[String],
        ids: &[String],
    ) -> Result<Vec<SourceRow>, ImportError> {
        let rows = self
            .client
            .query(&t.lookup_sql(), &[&keys, &ids])
            .await
            .map_err(self.fail("reading changed rows"))?;
        rows.iter().map(|r| source_row(t, r)).collect()
    }

    /// Forgets replayed log entries.
    pub async fn forget(&self, seqs: &[i64]) -> Result<(), ImportError> {
        self.client
            .execute(
                "DELETE FROM shardgate_import.log WHERE seq = ANY($1)",
                &[&seqs],
            )
            .await
            .map_err(self.fail("forgetting replayed changes"))?;
        Ok(())
    }
}

fn source_row(t: &SourceTable, r: &Row) -> Result<SourceRow, ImportError> {
    let key: Option<String> = r.get(0);
    let id: Option<String> = r.get(1);
    match (key, id) {
        (Some(key), Some(id)) => Ok(SourceRow {
            key,
            id,
            data: r.get(2),
        }),
        (key, id) => Err(ImportError::BadRow {
            table: t.display(),
            key: key.unwrap_or_default(),
            id: id.unwrap_or_default(),
            reason: "its key or id is NULL".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_named_without_its_password() {
        assert_eq!(
            redact("postgres://app:secret@db.local:6543/shop").unwrap(),
            "postgres://app@db.local:6543/shop"
        );
        assert_eq!(
            redact("host=127.0.0.1 user=me password=pw dbname=legacy").unwrap(),
            "postgres://me@127.0.0.1:5432/legacy"
        );
        let e = redact("postgres://a:b@h:notaport/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--source is not a PostgreSQL connection string"),
            "{e}"
        );
    }
}
