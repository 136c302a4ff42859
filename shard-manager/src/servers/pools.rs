//! One server's connections across the gateway's threads: a pool per thread (opened and
//! driven on the thread that uses it, see `per_thread`), and one semaphore that bounds
//! the server's concurrent operations whatever thread they run on.

use std::sync::Mutex;
use std::time::Duration;

use deadpool::managed::{PoolError, TimeoutType};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::AsyncPgConnection;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::connect::build_pool;
use super::per_thread::PerThread;
use crate::config::DatabaseSettings;

type PgPool = Pool<AsyncPgConnection>;

/// Why no connection could be had; the server turns it into a `ClusterError`.
#[derive(Debug)]
pub enum Unpooled {
    /// Every permit or pooled connection stayed busy for the whole wait.
    Saturated { waited_ms: u64 },
    /// The gateway is stopping: the pools are closed.
    Closed,
    /// The server did not give a connection: down, unreachable, refusing.
    Down(String),
}

/// The pools and the permits of one server.
pub struct Pools {
    /// This thread's pool.
    pools: PerThread<Result<PgPool, String>>,
    /// Every thread's pool, so that [`close`](Self::close) reaches them all.
    made: Mutex<Vec<PgPool>>,
    url: String,
    per_thread: usize,
    /// At most `pool_max_size` operations at once, whatever thread they run on: past
    /// that a request waits `pool_wait_timeout_ms`, then gets 503.
    permits: Semaphore,
    wait_timeout: Duration,
    connect_timeout: Duration,
}

impl Pools {
    /// Opens no connection. Fails here, at start-up, if building a pool would ever fail.
    pub fn new(url: String, db: &DatabaseSettings) -> Result<Self, deadpool::managed::BuildError> {
        build_pool(
            &url,
            db.pool_max_size,
            db.pool_wait_timeout(),
            db.connect_timeout(),
        )?;
        Ok(Self {
            pools: PerThread::new(),
            made: Mutex::new(Vec::new()),
            url,
            per_thread: db.pool_per_thread(),
            permits: Semaphore::new(db.pool_max_size),
            wait_timeout: db.pool_wait_timeout(),
            connect_timeout: db.connect_timeout(),
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A place among the operations this server runs at once; waits up to the pool wait
    /// timeout for one.
    pub async fn permit(&self) -> Result<SemaphorePermit<'_>, Unpooled> {
        match tokio::time::timeout(self.wait_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Unpooled::Closed),
            Err(_) => Err(self.saturated()),
        }
    }

    /// A connection from this thread's pool (made on its first use here).
    pub async fn checkout(&self) -> Result<Object<AsyncPgConnection>, Unpooled> {
        match self.pool()?.get().await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Timeout(TimeoutType::Wait)) => Err(self.saturated()),
            Err(PoolError::Timeout(_)) => Err(Unpooled::Down(format!(
                "no connection within {} ms",
                self.connect_timeout.as_millis()
            ))),
            Err(PoolError::Backend(e)) => Err(Unpooled::Down(e.to_string())),
            Err(e) => Err(Unpooled::Down(e.to_string())),
        }
    }

    /// Closes every thread's pool: idle connections are dropped, new operations fail.
    pub fn close(&self) {
        self.permits.close();
        for pool in self.made.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            pool.close();
        }
    }

    fn saturated(&self) -> Unpooled {
        Unpooled::Saturated {
            waited_ms: self.wait_timeout.as_millis() as u64,
        }
    }

    fn pool(&self) -> Result<PgPool, Unpooled> {
        let made = self.pools.get_or(|| {
            let pool = build_pool(
                &self.url,
                self.per_thread,
                self.wait_timeout,
                self.connect_timeout,
            );
            if let Ok(pool) = &pool {
                let mut all = self.made.lock().unwrap_or_else(|p| p.into_inner());
                if self.permits.is_closed() {
                    pool.close();
                }
                all.push(pool.clone());
            }
            pool.map_err(|e| e.to_string())
        });
        made.map_err(Unpooled::Down)
    }
}
