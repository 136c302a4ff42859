//! One shard's servers and how a read picks among them.
//!
//! - `strong`: the primary.
//! - `eventual`: the qualifying replicas (not banned, lag known and within limits) in
//!   the shard's balance order, then the primary. A replica that turns out to be down
//!   is skipped (and banned) and the next one tried within the same request.
//! - read-your-writes: a qualifying replica that has replayed the write's LSN, waiting
//!   up to `ryw_wait_ms` for one, else the primary. Checked on the replica itself right
//!   before the read, so the guarantee never rests on a stale cached position.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::schema::Schema;
use super::served::Served;
use crate::config::{Balance, ReplicationSettings, ShardFollows};
use crate::error::ClusterError;
use crate::routing::{Role, ShardId};
use crate::servers::Server;
use crate::store::Record;
use crate::wal::{Consistency, Lsn};
use crate::wire::read::PointRead;
use crate::wire::{self, WireConn, WireError};

/// A shard: one primary, any number of replicas.
pub struct Shard {
    pub id: ShardId,
    pub primary: Arc<Server>,
    pub replicas: Vec<Arc<Server>>,
    pub balance: Balance,
    pub read_primary: bool,
    /// Whether a failover moves the map to another listed server (the failover
    /// watcher's job) or happens behind the fixed address the map names.
    pub follow: ShardFollows,
    /// Whether the primary has every migration, as the monitor last found.
    pub schema: Schema,
    /// Round-robin cursor over the replicas.
    next: AtomicUsize,
    /// Whether point reads leave in batches (`database.batch_point_reads`).
    pub batch_point_reads: bool,
    /// Why the map's primary must not take writes although it still would: another
    /// server of the shard took over on a newer timeline and this gateway could not
    /// record it in the map yet (set and cleared by the failover watcher).
    superseded: Mutex<Option<String>>,
}

impl Shard {
    pub fn new(
        id: ShardId,
        primary: Arc<Server>,
        replicas: Vec<Arc<Server>>,
        balance: Balance,
        read_primary: bool,
    ) -> Self {
        Self {
            id,
            primary,
            replicas,
            balance,
            read_primary,
            follow: ShardFollows::default(),
            schema: Schema::default(),
            next: AtomicUsize::new(0),
            batch_point_reads: true,
            superseded: Mutex::new(None),
        }
    }

    /// Fails fast (503, naming what is missing) while the shard lacks migrations.
    pub fn ready(&self) -> Result<(), ClusterError> {
        self.schema.require(self.id, &self.primary.addr)
    }

    /// [`Shard::ready`], and for a write: fails fast, before anything is sent, while
    /// the map's primary is superseded ([`Shard::supersede`]). The write then waits for
    /// the map to name the new primary, as after any lost primary
    /// (`failover.write_wait_ms`), instead of landing on a primary from before a
    /// promotion, where it would be lost or hang on a standby that no longer follows.
    pub fn ready_for_writes(&self) -> Result<(), ClusterError> {
        self.ready()?;
        match self.superseded_by() {
            None => Ok(()),
            Some(reason) => Err(ClusterError::Unavailable {
                shard: self.id,
                role: Role::Primary,
                server: self.primary.addr.clone(),
                reason,
                maybe_committed: false,
            }),
        }
    }

    /// Another server took over on a newer timeline, and the map could not record it
    /// (`reason` says which and why): writes are refused until [`Shard::unsupersede`].
    pub fn supersede(&self, reason: String) {
        *self.superseded.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    /// The map's primary is the shard's primary again (recorded, or it never lost).
    pub fn unsupersede(&self) {
        *self.superseded.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Why writes are refused, when they are.
    pub fn superseded_by(&self) -> Option<String> {
        self.superseded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The servers an eventual read may use, best first; the primary is always last
    /// (unless `read_primary` puts it in the rotation).
    pub fn read_order(&self, limits: &ReplicationSettings) -> Vec<&Arc<Server>> {
        let mut pool: Vec<&Arc<Server>> = self
            .replicas
            .iter()
            .filter(|r| r.qualification(limits).is_ok())
            .collect();
        if self.read_primary {
            pool.push(&self.primary);
        }
        if !pool.is_empty() {
            let start = self.next.fetch_add(1, Ordering::Relaxed) % pool.len();
            pool.rotate_left(start);
            if self.balance == Balance::LeastOutstanding {
                // Stable: ties keep the round-robin order.
                pool.sort_by_key(|s| s.in_flight());
            }
        }
        if !self.read_primary {
            pool.push(&self.primary);
        }
        pool
    }

    /// One record by its identity, on the server `consistency` calls for. Eventual and
    /// strong reads leave with the other point reads to the same server that arrive
    /// together ([`Server::find`]); a read-your-writes read checks its replica's
    /// position first, on the connection it reads on.
    pub async fn find(
        &self,
        consistency: Consistency,
        limits: &ReplicationSettings,
        read: PointRead,
    ) -> Result<Served<Option<Record>>, ClusterError> {
        let find = async |server: &Arc<Server>| match self.batch_point_reads {
            true => server.find(read.clone()).await,
            false => {
                let ident = (read.key.as_str(), read.slot);
                server
                    .run_as("find", async |conn| {
                        wire::find(conn, &read.table, ident, &read.id).await
                    })
                    .await
            }
        };
        match consistency {
            Consistency::Strong => {
                let seen = self.primary.known_wal();
                let value = find(&self.primary).await?;
                Ok(Served::by(&self.primary, value).seen_at(seen))
            }
            Consistency::Eventual => self.first_answering(self.read_order(limits), find).await,
            Consistency::ReadYourWrites(lsn) => {
                let op = async |conn: &mut WireConn| {
                    let ident = (read.key.as_str(), read.slot);
                    wire::find(conn, &read.table, ident, &read.id).await
                };
                self.read_at_least(lsn, limits, &op).await
            }
        }
    }

    /// Runs a read on the server `consistency` calls for.
    pub async fn read<T, F>(
        &self,
        consistency: Consistency,
        limits: &ReplicationSettings,
        op: F,
    ) -> Result<Served<T>, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        match consistency {
            Consistency::Strong => self.read_primary(&op).await,
            Consistency::Eventual => self.first_available(self.read_order(limits), &op).await,
            Consistency::ReadYourWrites(lsn) => self.read_at_least(lsn, limits, &op).await,
        }
    }

    async fn first_available<T, F>(
        &self,
        order: Vec<&Arc<Server>>,
        op: &F,
    ) -> Result<Served<T>, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        self.first_answering(order, async |server: &Arc<Server>| {
            server.run_as("read", async |conn| op(conn).await).await
        })
        .await
    }

    /// The first server of `order` whose `attempt` answers; a server down, saturated,
    /// or a replica that refuses the slot, hands on to the next.
    async fn first_answering<T, A>(
        &self,
        order: Vec<&Arc<Server>>,
        attempt: A,
    ) -> Result<Served<T>, ClusterError>
    where
        A: AsyncFn(&Arc<Server>) -> Result<T, ClusterError>,
    {
        let mut last = None;
        for server in order {
            let seen = server.known_wal();
            match attempt(server).await {
                Ok(value) => return Ok(Served::by(server, value).seen_at(seen)),
                // Down or saturated: the next server may still answer. A replica that
                // refuses the slot has not replayed its shard's taking it yet (a move
                // just switched): the primary, last in the order, answers.
                Err(e)
                    if e.is_unavailable() || e.is_saturated() || refused_by_replica(server, &e) =>
                {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.nothing_to_read()))
    }

    async fn read_at_least<T, F>(
        &self,
        lsn: Lsn,
        limits: &ReplicationSettings,
        op: &F,
    ) -> Result<Served<T>, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        // A token further on than the primary is known to have reached is no reason to
        // hold a replica's connection while polling: it is either a write newer than the
        // last check (the primary has it) or forged (nothing will ever reach it).
        if lsn > self.primary.known_wal() {
            return self.read_primary::<T, F>(op).await;
        }
        let mut replicas: Vec<&Arc<Server>> = self
            .read_order(limits)
            .into_iter()
            .filter(|s| s.role == Role::Replica)
            .collect();
        // Replicas already known to be past the write first.
        replicas.sort_by_key(|r| r.stats().condition.wal.is_none_or(|w| w < lsn));
        let wait = Duration::from_millis(limits.ryw_wait_ms);
        for replica in replicas {
            let attempt = replica
                .run_as("read at least", async |conn| {
                    let started = Instant::now();
                    loop {
                        let replayed = wire::replay_wal(conn)
                            .await?
                            .as_deref()
                            .and_then(Lsn::parse);
                        if let Some(pos) = replayed.filter(|p| *p >= lsn) {
                            return Ok(Some((op(conn).await?, pos)));
                        }
                        if started.elapsed() >= wait {
                            return Ok(None);
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
                .await;
            match attempt {
                Ok(Some((value, pos))) => {
                    replica.saw_wal(pos);
                    return Ok(Served::by(replica, value).seen_at(pos));
                }
                // Not caught up within the wait: the primary has it for sure.
                Ok(None) => break,
                Err(e) if e.is_unavailable() || e.is_saturated() => continue,
                Err(e) if refused_by_replica(replica, &e) => break,
                Err(e) => return Err(e),
            }
        }
        self.read_primary::<T, F>(op).await
    }

    /// A read on the primary, known to reflect at least its last known WAL position.
    async fn read_primary<T, F>(&self, op: &F) -> Result<Served<T>, ClusterError>
    where
        F: AsyncFn(&mut WireConn) -> Result<T, WireError>,
    {
        let seen = self.primary.known_wal();
        let value = self
            .primary
            .run_as("read", async |conn| op(conn).await)
            .await?;
        Ok(Served::by(&self.primary, value).seen_at(seen))
    }

    /// Waits until some replica has replayed `lsn`; returns that replica's address.
    pub async fn await_replica(&self, lsn: Lsn, limit: Duration) -> Result<String, ClusterError> {
        let started = Instant::now();
        loop {
            for replica in self.replicas.iter().filter(|r| r.is_eligible()) {
                let replayed = replica
                    .run_as("replay position", async |conn| wire::replay_wal(conn).await)
                    .await
                    .ok()
                    .flatten()
                    .as_deref()
                    .and_then(Lsn::parse);
                if let Some(pos) = replayed {
                    replica.saw_wal(pos);
                    if pos >= lsn {
                        return Ok(replica.addr.clone());
                    }
                }
            }
            if started.elapsed() >= limit {
                return Err(ClusterError::NotReplicated {
                    shard: self.id,
                    lsn: lsn.to_string(),
                    waited_ms: limit.as_millis() as u64,
                });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn nothing_to_read(&self) -> ClusterError {
        ClusterError::Unavailable {
            shard: self.id,
            role: Role::Primary,
            server: self.primary.addr.clone(),
            reason: "no server to read from".into(),
            maybe_committed: false,
        }
    }
}

/// A replica's refusal of a slot (SG001): it lags behind its primary's ownership.
fn refused_by_replica(server: &Server, error: &ClusterError) -> bool {
    server.role == Role::Replica && error.refused_at().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;
    use crate::servers::Lag;

    fn server(role: Role, port: u16) -> Arc<Server> {
        let db = DatabaseSettings {
            user: "u".into(),
            password: String::new().into(),
            dbname: "d".into(),
            connect_timeout_ms: 100,
            statement_timeout_ms: 100,
            txn_lock_timeout_ms: 2000,
            pool_max_size: 1,
            pool_wait_timeout_ms: 10,
            batch_point_reads: true,
            batch_writes: true,
            pool_threads: 1,
            allow_insecure_auth: false,
            sslmode: Default::default(),
            ssl_root_cert: None,
        };
        let addr = format!("127.0.0.1:{port}");
        Arc::new(Server::new(ShardId(0), role, &addr, &db, Duration::from_secs(5)).unwrap())
    }

    fn caught_up(s: &Server, lag_bytes: u64) {
        s.check_passed(Some(Lsn(100)));
        s.set_lag(Some(Lag {
            bytes: lag_bytes,
            ms: 0,
        }));
    }

    fn ports(order: &[&Arc<Server>]) -> Vec<String> {
        order
            .iter()
            .map(|s| s.addr.rsplit(':').next().unwrap().to_owned())
            .collect()
    }

    fn shard(balance: Balance, read_primary: bool) -> Shard {
        let replicas = (1..=3).map(|p| server(Role::Replica, p)).collect();
        Shard::new(
            ShardId(0),
            server(Role::Primary, 9),
            replicas,
            balance,
            read_primary,
        )
    }

    #[test]
    fn round_robin_rotates_qualifying_replicas_and_keeps_the_primary_last() {
        let limits = ReplicationSettings::default();
        let s = shard(Balance::RoundRobin, false);
        s.replicas.iter().for_each(|r| caught_up(r, 0));
        assert_eq!(ports(&s.read_order(&limits)), ["1", "2", "3", "9"]);
        assert_eq!(ports(&s.read_order(&limits)), ["2", "3", "1", "9"]);
        assert_eq!(ports(&s.read_order(&limits)), ["3", "1", "2", "9"]);
    }

    #[test]
    fn lagging_unknown_and_banned_replicas_take_no_reads() {
        let limits = ReplicationSettings::default();
        let s = shard(Balance::RoundRobin, false);
        caught_up(&s.replicas[0], limits.max_lag_bytes + 1);
        // replicas[1]: never checked, lag unknown.
        caught_up(&s.replicas[2], 0);
        assert_eq!(ports(&s.read_order(&limits)), ["3", "9"]);
        let _ = s.replicas[2].check_failed("connection refused".into());
        assert_eq!(
            ports(&s.read_order(&limits)),
            ["9"],
            "only the primary is left"
        );
        s.replicas[2].check_passed(Some(Lsn(200)));
        assert_eq!(
            ports(&s.read_order(&limits)),
            ["3", "9"],
            "a passing check lifts the ban"
        );
    }

    #[test]
    fn least_outstanding_prefers_the_idlest_replica_and_primary_can_join() {
        let limits = ReplicationSettings::default();
        let s = shard(Balance::LeastOutstanding, true);
        s.replicas.iter().for_each(|r| caught_up(r, 0));
        s.replicas[0].set_in_flight(5);
        s.replicas[1].set_in_flight(1);
        s.replicas[2].set_in_flight(3);
        s.primary.set_in_flight(7);
        assert_eq!(ports(&s.read_order(&limits)), ["2", "3", "1", "9"]);
        s.replicas[1].set_in_flight(9);
        assert_eq!(ports(&s.read_order(&limits)), ["3", "1", "9", "2"]);
    }
}
