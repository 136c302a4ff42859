//! Jobs of one kind in the metadata database ([`Store`]): recorded, read, claimed,
//! advanced. Every write touches `updated_at` (the heartbeat the stuck rule reads); a
//! phase changes only along the kind's declared transitions, and only from the phase
//! the caller read (so a write never lands on a job someone else moved on).

use std::marker::PhantomData;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::{Job, JobError, JobKind, JobPhase};

/// A statement parameter.
pub type Param<'a> = &'a (dyn ToSql + Sync);

/// The jobs of kind `K`, over one connection to the metadata database. A kind adds its
/// own queries as an inherent `impl Store<'_, ItsKind>`.
pub struct Store<'c, K> {
    client: &'c Client,
    kind: PhantomData<fn() -> K>,
}

impl<'c, K: JobKind> Store<'c, K> {
    pub fn new(client: &'c Client) -> Self {
        Self {
            client,
            kind: PhantomData,
        }
    }

    pub fn client(&self) -> &'c Client {
        self.client
    }

    /// The SELECT list of a job: the common columns (age, idle time and whether a
    /// process of this database holds its lock computed), then the kind's own.
    fn columns() -> String {
        let own = match K::COLUMNS.trim() {
            "" => String::new(),
            own => format!(", {own}"),
        };
        format!(
            "id, phase, rows_total, rows_copied, rows_replayed, rows_behind, fence_ms, note,
             actor, extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8,
             extract(epoch FROM now() - updated_at)::float8,
             EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                      AND l.database = (SELECT oid FROM pg_database
                                         WHERE datname = current_database())
                      AND l.classid::int = {class} AND l.objid::bigint = {table}.id){own}",
            class = K::LOCK_CLASS,
            table = K::TABLE,
        )
    }

    fn from_row(row: &Row) -> Result<Job<K>, JobError> {
        let phase: String = row.get(1);
        Ok(Job {
            id: row.get(0),
            phase: K::Phase::parse(&phase).ok_or_else(|| JobError::Corrupt {
                table: K::TABLE,
                why: format!("unknown phase {phase:?}"),
            })?,
            rows_total: row.get(2),
            rows_copied: row.get(3),
            rows_replayed: row.get(4),
            rows_behind: row.get(5),
            fence_ms: row.get(6),
            note: row.get(7),
            actor: row.get(8),
            age_secs: row.get(9),
            idle_secs: row.get(10),
            running: row.get(11),
            detail: K::read(row, 12),
        })
    }

    /// Records a job in its first phase, with its own columns; its id.
    pub async fn insert(&self, actor: &str, own: &[(&str, Param<'_>)]) -> Result<i64, JobError> {
        let names: Vec<&str> = own.iter().map(|(name, _)| *name).collect();
        let places: Vec<String> = (3..own.len() + 3).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} (phase, actor, {}) VALUES ($1, $2, {}) RETURNING id",
            K::TABLE,
            names.join(", "),
            places.join(", ")
        );
        let first = K::Phase::FIRST.as_str();
        let mut params: Vec<Param<'_>> = vec![&first, &actor];
        params.extend(own.iter().map(|(_, value)| *value));
        Ok(self.client.query_one(&sql, &params).await?.get(0))
    }

    pub async fn get(&self, id: i64) -> Result<Job<K>, JobError> {
        let sql = format!("SELECT {} FROM {} WHERE id = $1", Self::columns(), K::TABLE);
        let row = self.client.query_opt(&sql, &[&id]).await?;
        Self::from_row(&row.ok_or(JobError::Unknown { noun: K::NOUN, id })?)
    }

    /// The active jobs, and the newest finished ones (up to `finished`), newest first.
    pub async fn list(&self, finished: i64) -> Result<Vec<Job<K>>, JobError> {
        let (columns, table) = (Self::columns(), K::TABLE);
        let sql = format!(
            "(SELECT {columns} FROM {table} WHERE phase NOT IN ('done', 'aborted'))
             UNION ALL
             (SELECT {columns} FROM {table} WHERE phase IN ('done', 'aborted')
               ORDER BY id DESC LIMIT $1)
             ORDER BY 1 DESC"
        );
        let rows = self.client.query(&sql, &[&finished]).await;
        let rows = rows.map_err(|e| match e.code() {
            Some(&SqlState::UNDEFINED_TABLE) => JobError::NoTable {
                noun: K::NOUN,
                table: K::TABLE,
            },
            _ => JobError::Query(e),
        })?;
        rows.iter().map(Self::from_row).collect()
    }

    /// The active jobs that match `condition` (on the kind's columns, parameters from
    /// `$1`), oldest first.
    pub async fn active_where(
        &self,
        condition: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Job<K>>, JobError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE phase NOT IN ('done', 'aborted') AND ({condition})
              ORDER BY id",
            Self::columns(),
            K::TABLE
        );
        let rows = self.client.query(&sql, params).await?;
        rows.iter().map(Self::from_row).collect()
    }

    /// Takes the job's lock for this session, then reads it: only the lock's holder
    /// advances or aborts a job. The lock goes with the session, so a process that died
    /// leaves its job free to be resumed by the next one.
    pub async fn claim(&self, id: i64) -> Result<Job<K>, JobError> {
        let locked: bool = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2::int)",
                &[&K::LOCK_CLASS, &(id as i32)],
            )
            .await?
            .get(0);
        if !locked {
            return Err(JobError::Busy { noun: K::NOUN, id });
        }
        self.get(id).await
    }

    /// Gives the job's lock back before the session ends: a command that is done with
    /// the job lets the next one claim it at once, rather than once the server has seen
    /// its connection close.
    pub async fn release(&self, id: i64) -> Result<(), JobError> {
        self.client
            .execute(
                "SELECT pg_advisory_unlock($1, $2::int)",
                &[&K::LOCK_CLASS, &(id as i32)],
            )
            .await?;
        Ok(())
    }

    /// Moves the job from phase `from` (as the caller read it) to `to`, with a note.
    pub async fn set_phase(
        &self,
        id: i64,
        from: K::Phase,
        to: K::Phase,
        note: &str,
    ) -> Result<(), JobError> {
        self.transition(id, (from, to), ", note = $5", &[&note])
            .await
    }

    /// The job passed its fence (`to`, usually its last phase or the one before):
    /// how long writers waited (kept if unknown), nothing behind any more.
    pub async fn fenced(
        &self,
        id: i64,
        (from, to): (K::Phase, K::Phase),
        fence_ms: Option<i64>,
        note: &str,
    ) -> Result<(), JobError> {
        let set = ", note = $5, fence_ms = coalesce($6, fence_ms), rows_behind = 0";
        self.transition(id, (from, to), set, &[&note, &fence_ms])
            .await
    }

    /// A phase change and more (`also`, parameters from `$5`), refused unless the kind
    /// allows it and the job is still in `from`.
    async fn transition(
        &self,
        id: i64,
        (from, to): (K::Phase, K::Phase),
        also: &str,
        params: &[Param<'_>],
    ) -> Result<(), JobError> {
        if !from.may_become(to) {
            return Err(JobError::Transition {
                noun: K::NOUN,
                id,
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        let sql = format!(
            "UPDATE {} SET phase = $2, updated_at = now(),
                    finished_at = CASE WHEN $4 THEN now() END{also}
              WHERE id = $1 AND phase = $3",
            K::TABLE
        );
        let (to_name, from_name, finished) = (to.as_str(), from.as_str(), !to.active());
        let mut all: Vec<Param<'_>> = vec![&id, &to_name, &from_name, &finished];
        all.extend_from_slice(params);
        match self.client.execute(&sql, &all).await? {
            0 => Err(JobError::Changed {
                noun: K::NOUN,
                id,
                from: from.as_str(),
            }),
            _ => Ok(()),
        }
    }

    /// The last thing that happened (an error, a wait), shown by `status`.
    pub async fn set_note(&self, id: i64, note: &str) -> Result<(), JobError> {
        self.update(id, "note = $2", &[&note]).await
    }

    pub async fn set_total(&self, id: i64, rows: i64) -> Result<(), JobError> {
        self.update(id, "rows_total = $2", &[&rows]).await
    }

    /// `rows` more copied, and where the copy stands (`checkpoint`: the kind's columns
    /// set, parameters from `$3`), in one update: a resumed job goes on after it.
    pub async fn copied(
        &self,
        id: i64,
        rows: i64,
        checkpoint: &str,
        params: &[Param<'_>],
    ) -> Result<(), JobError> {
        let set = format!("rows_copied = rows_copied + $2, {checkpoint}");
        let mut all: Vec<Param<'_>> = vec![&rows];
        all.extend_from_slice(params);
        self.update(id, &set, &all).await
    }

    /// Changes replayed, and how many are still logged.
    pub async fn replayed(&self, id: i64, rows: i64, behind: i64) -> Result<(), JobError> {
        let set = "rows_replayed = rows_replayed + $2, rows_behind = $3";
        self.update(id, set, &[&rows, &behind]).await
    }

    /// Sets columns of the job (`set`, parameters from `$2`) and its heartbeat.
    pub async fn update(&self, id: i64, set: &str, params: &[Param<'_>]) -> Result<(), JobError> {
        let sql = format!(
            "UPDATE {} SET {set}, updated_at = now() WHERE id = $1",
            K::TABLE
        );
        let mut all: Vec<Param<'_>> = vec![&id];
        all.extend_from_slice(params);
        self.client.execute(&sql, &all).await?;
        Ok(())
    }
}
