//! The statements of health checks and upkeep, on the same wire connections requests
//! use (one pool per server): whether a server is in recovery and where its WAL is, the
//! shard's cache epoch, raising it, the migrations applied, rows per table and bytes on
//! disk, the sweep of expired idempotency entries. None takes a parameter from a
//! request; each is sent with the simple protocol and its rows read as text. Their text
//! is in `store::statements`.

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::DataRowBody;
use postgres_protocol::message::frontend;

use super::conn::WireConn;
use super::error::{ServerError, WireError};
use crate::error::sqlstate::{decide, Decision, INSUFFICIENT_PRIVILEGE, UNDEFINED_TABLE};
use crate::store::identity::{Identity, Seen};
use crate::store::statements::identity as identity_statement;
use crate::store::statements::{fence_disown, FENCE_BEGIN};
use crate::store::statements::{
    purge_expired as purge_statement, APPLIED_MIGRATIONS, BUMP_CACHE_EPOCH, CURRENT_WAL,
    DISK_BYTES, ROLE, TABLE_COUNTS, TAKES_WRITES, WAL_POSITION, WAL_POSITION_AND_EPOCH,
};
use crate::store::ENTRY_TABLES;

/// A row read as text, None for NULL.
type TextRow = Vec<Option<String>>;

impl WireConn {
    /// Sends every statement of `statements` at once, each as its own simple query (so
    /// each is its own transaction, committed before the next runs), and reads every
    /// answer: the rows of each. The first refusal is returned once every answer has
    /// been read, so the connection stays usable; it names `what`.
    pub async fn query_text(
        &mut self,
        what: &'static str,
        statements: &[&str],
    ) -> Result<Vec<Vec<TextRow>>, WireError> {
        self.start();
        for sql in statements {
            frontend::query(sql, &mut self.out)?;
        }
        self.flush().await?;
        let mut answers = Vec::with_capacity(statements.len());
        let mut refused: Option<ServerError> = None;
        let mut undecodable = None;
        for _ in statements {
            let mut rows = Vec::new();
            let ended = self
                .until_ready(None, &mut |_, row| match text_row(&row) {
                    Ok(row) => rows.push(row),
                    Err(e) => undecodable = Some(e),
                })
                .await?;
            if let Some(error) = ended.error {
                refused.get_or_insert(error);
            }
            answers.push(rows);
        }
        self.done();
        if let Some(error) = refused {
            return Err(WireError::from(error).in_statement(what));
        }
        match undecodable {
            Some(e) => Err(e),
            None => Ok(answers),
        }
    }

    /// One statement's rows (see [`query_text`](Self::query_text)).
    async fn rows(&mut self, what: &'static str, sql: &str) -> Result<Vec<TextRow>, WireError> {
        Ok(self.query_text(what, &[sql]).await?.remove(0))
    }
}

fn text_row(row: &DataRowBody) -> Result<TextRow, WireError> {
    let buffer = row.buffer();
    row.ranges()
        .map(|range| Ok(range.map(|r| String::from_utf8_lossy(&buffer[r]).into_owned())))
        .collect()
        .map_err(WireError::from)
}

/// The one row a check answers.
fn one(mut rows: Vec<TextRow>, what: &str) -> Result<TextRow, WireError> {
    match rows.len() {
        1 => Ok(rows.remove(0)),
        n => Err(WireError::Protocol(format!(
            "{what} answered {n} rows, not 1"
        ))),
    }
}

fn column(row: &TextRow, i: usize, what: &str) -> Result<Option<String>, WireError> {
    row.get(i)
        .cloned()
        .ok_or_else(|| WireError::Protocol(format!("{what} answered too few columns")))
}

fn number(value: Option<String>, what: &str) -> Result<i64, WireError> {
    value
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| WireError::Undecodable(format!("{what}: {value:?} is not a number")))
}

/// What a health check reads of a server ([`WAL_POSITION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub in_recovery: bool,
    /// The write position on a primary, the replay position on a replica.
    pub wal: Option<String>,
    /// New transactions are read-only by default (`default_transaction_read_only`).
    pub read_only_by_setting: bool,
}

impl Position {
    fn of(row: &TextRow) -> Result<Self, WireError> {
        Ok(Self {
            in_recovery: column(row, 0, "the WAL check")?.as_deref() == Some("t"),
            wal: column(row, 1, "the WAL check")?,
            read_only_by_setting: column(row, 2, "the WAL check")?.as_deref() == Some("on"),
        })
    }
}

/// Whether the server is in recovery, where its WAL is, and whether it is read-only by
/// default.
pub async fn position(conn: &mut WireConn) -> Result<Position, WireError> {
    let row = one(
        conn.rows("wal_position", WAL_POSITION).await?,
        "the WAL check",
    )?;
    Position::of(&row)
}

/// Whether the server is in recovery, and where its WAL is.
pub async fn wal_position(conn: &mut WireConn) -> Result<(bool, Option<String>), WireError> {
    let p = position(conn).await?;
    Ok((p.in_recovery, p.wal))
}

/// Whether the server is in recovery and, when it takes writes, the timeline it writes
/// on (None in recovery).
pub async fn role(conn: &mut WireConn) -> Result<(bool, Option<u32>), WireError> {
    let row = one(conn.rows("role", ROLE).await?, "the role check")?;
    let in_recovery = column(&row, 0, "the role check")?.as_deref() == Some("t");
    let timeline = column(&row, 1, "the role check")?
        .map(|hex| {
            u32::from_str_radix(&hex, 16).map_err(|_| {
                WireError::Undecodable(format!("the role check: timeline {hex:?} is not hex"))
            })
        })
        .transpose()?;
    Ok((in_recovery, timeline))
}

/// Fences the server this connection reached ([`FENCE_BEGIN`], [`fence_disown`]): its
/// slots emptied, told it is `shard` at map `version`. How many slots it gave up, or
/// None when it had been told a newer version (left as it is). On a failure the
/// transaction is rolled back when the connection still answers.
pub async fn disown(
    conn: &mut WireConn,
    shard: u32,
    version: u64,
) -> Result<Option<u64>, WireError> {
    const WHAT: &str = "the fence";
    let fenced = async {
        let told = conn.rows("fence", FENCE_BEGIN).await?;
        let told = match told.first() {
            Some(row) => Some(number(column(row, 0, WHAT)?, "the version told")?.max(0) as u64),
            None => None,
        };
        if told.is_some_and(|t| t > version) {
            conn.simple("ROLLBACK").await?;
            return Ok(None);
        }
        let rows = conn.rows("fence", &fence_disown(shard, version)).await?;
        let gone = rows.get(1).ok_or_else(|| {
            WireError::Protocol(format!("{WHAT} answered {} rows, not 2", rows.len()))
        })?;
        Ok(Some(
            number(column(gone, 0, WHAT)?, "the slots given up")?.max(0) as u64,
        ))
    };
    let outcome = fenced.await;
    if outcome.is_err() {
        let _ = conn.simple("ROLLBACK").await;
    }
    outcome
}

/// What the server this connection reached is ([`identity_statement`]): its identity,
/// whether it takes writes, whether it waits for a synchronous standby. What the role
/// may not read (the system identifier) or the shard does not have yet (what it was
/// told) is asked again without, and comes back as None.
pub async fn identity(conn: &mut WireConn) -> Result<Seen, WireError> {
    let (mut system, mut told) = (true, true);
    loop {
        let sql = identity_statement(system, told);
        match conn.rows("identity", &sql).await {
            Ok(rows) => return seen(&one(rows, "the identity check")?),
            Err(WireError::Server(e)) if system && e.code == INSUFFICIENT_PRIVILEGE => {
                system = false
            }
            Err(WireError::Server(e)) if told && e.code == UNDEFINED_TABLE => told = false,
            Err(e) => return Err(e),
        }
    }
}

fn seen(row: &TextRow) -> Result<Seen, WireError> {
    const WHAT: &str = "the identity check";
    let flag = |i| Ok::<_, WireError>(column(row, i, WHAT)?.as_deref() == Some("t"));
    let timeline = number(column(row, 1, WHAT)?, "the identity check's timeline")?;
    let shard = column(row, 4, WHAT)?
        .map(|s| number(Some(s), "the identity check's shard"))
        .transpose()?;
    Ok(Seen {
        identity: Identity {
            timeline: u32::try_from(timeline).map_err(|_| {
                WireError::Undecodable(format!("{WHAT}: timeline {timeline} is out of range"))
            })?,
            system_identifier: column(row, 2, WHAT)?,
            node: column(row, 3, WHAT)?,
            shard: shard.map(|s| s as u32),
        },
        in_recovery: flag(0)?,
        read_only: flag(5)?,
        synchronous: flag(6)?,
    })
}

/// Whether the server takes writes now (see `store::statements::TAKES_WRITES`).
pub async fn takes_writes(conn: &mut WireConn) -> Result<bool, WireError> {
    let row = one(
        conn.rows("takes_writes", TAKES_WRITES).await?,
        "the write check",
    )?;
    Ok(column(&row, 0, "the write check")?.as_deref() == Some("t"))
}

/// A primary's check: [`position`] and, in the same statement, the shard's cache
/// epoch (None on a shard without the `cache_epoch` migration, which is then checked
/// without it: a missing migration is the schema check's to report).
pub async fn position_and_epoch(conn: &mut WireConn) -> Result<(Position, Option<i64>), WireError> {
    match conn.rows("wal_position", WAL_POSITION_AND_EPOCH).await {
        Ok(rows) => {
            let row = one(rows, "the WAL check")?;
            let epoch = column(&row, 3, "the WAL check")?;
            Ok((
                Position::of(&row)?,
                epoch
                    .map(|e| number(Some(e), "the cache epoch"))
                    .transpose()?,
            ))
        }
        Err(e) if e.decision() == Some(Decision::NoSchema) => Ok((position(conn).await?, None)),
        Err(e) => Err(e),
    }
}

/// Moves the shard's cache epoch on. Returns the new epoch and the primary's WAL
/// position read after that commit (both statements in one send, the second run after
/// the first committed): past every write that read an older epoch after its own
/// commit (see `cache::epochs`).
pub async fn bump_cache_epoch(conn: &mut WireConn) -> Result<(i64, String), WireError> {
    let mut answers = conn
        .query_text("bump_cache_epoch", &[BUMP_CACHE_EPOCH, CURRENT_WAL])
        .await?;
    let wal = one(answers.pop().unwrap_or_default(), "the WAL position")?;
    let epoch = one(answers.pop().unwrap_or_default(), "raising the cache epoch")?;
    Ok((
        number(column(&epoch, 0, "the cache epoch")?, "the cache epoch")?,
        column(&wal, 0, "the WAL position")?
            .ok_or_else(|| WireError::Undecodable("the WAL position was NULL".into()))?,
    ))
}

/// The migrations this server has applied (none when the migrations table does not
/// exist).
pub async fn applied_migrations(conn: &mut WireConn) -> Result<Vec<String>, WireError> {
    match conn.rows("applied_migrations", APPLIED_MIGRATIONS).await {
        Ok(rows) => Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next()?)
            .collect()),
        Err(e) if e.decision() == Some(Decision::NoSchema) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Rows per logical table on this server.
pub async fn table_counts(conn: &mut WireConn) -> Result<Vec<(String, i64)>, WireError> {
    conn.rows("table_counts", TABLE_COUNTS)
        .await?
        .into_iter()
        .map(|row| {
            let table = column(&row, 0, "the table counts")?.unwrap_or_default();
            Ok((
                table,
                number(column(&row, 1, "the table counts")?, "a count")?,
            ))
        })
        .collect()
}

/// Bytes on disk of the records table (heap, indexes, TOAST) and of the whole database.
pub async fn disk_bytes(conn: &mut WireConn) -> Result<(i64, i64), WireError> {
    let row = one(conn.rows("disk_bytes", DISK_BYTES).await?, "the sizes")?;
    Ok((
        number(column(&row, 0, "the sizes")?, "the table's size")?,
        number(column(&row, 1, "the sizes")?, "the database's size")?,
    ))
}

/// Deletes up to `limit` expired idempotency entries from each table of them; how many.
pub async fn purge_expired(conn: &mut WireConn, limit: u32) -> Result<usize, WireError> {
    let statements: Vec<String> = ENTRY_TABLES
        .iter()
        .map(|table| purge_statement(table, limit))
        .collect();
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    let mut deleted = 0;
    for rows in conn.query_text("purge_expired", &statements).await? {
        let row = one(rows, "the sweep")?;
        deleted += number(column(&row, 0, "the sweep")?, "entries deleted")? as usize;
    }
    Ok(deleted)
}

impl WireError {
    /// What the refusal's SQLSTATE means, when this is a server's refusal.
    pub fn decision(&self) -> Option<Decision> {
        match self {
            WireError::Server(e) => Some(decide(&e.code)),
            _ => None,
        }
    }
}
