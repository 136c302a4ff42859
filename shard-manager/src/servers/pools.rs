//! One server's connections across the gateway's threads: a pool per thread (opened and
//! driven on the thread that uses it, see `per_thread`), and one semaphore that bounds
//! the server's concurrent operations whatever thread they run on.
//!
//! Every operation runs on a wire connection (`crate::wire`): requests, the health
//! checks, the upkeep. One pool per thread, one kind of connection.

use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool::managed::{self, BuildError, Manager, PoolError, TimeoutType};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::connect::build_managed;
use super::per_thread::PerThread;
use crate::config::DatabaseSettings;
use crate::wire::{Behind, Target, WireManager, WireObject};

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

/// One kind of pool, one per thread, and every thread's, so that all can be closed.
struct ThreadPools<M: Manager> {
    this_thread: PerThread<Result<managed::Pool<M>, String>>,
    made: Mutex<Vec<managed::Pool<M>>>,
}

impl<M: Manager + 'static> ThreadPools<M> {
    fn new() -> Self {
        Self {
            this_thread: PerThread::new(),
            made: Mutex::new(Vec::new()),
        }
    }

    /// This thread's pool, built by `build` on its first use here (closed at once if
    /// the server's pools already are).
    fn get(
        &self,
        closed: bool,
        build: impl FnOnce() -> Result<managed::Pool<M>, BuildError>,
    ) -> Result<managed::Pool<M>, Unpooled> {
        let made = self.this_thread.get_or(|| {
            let pool = build();
            if let Ok(pool) = &pool {
                let mut all = self.made.lock().unwrap_or_else(|p| p.into_inner());
                if closed {
                    pool.close();
                }
                all.push(pool.clone());
            }
            pool.map_err(|e| e.to_string())
        });
        made.map_err(Unpooled::Down)
    }

    fn close(&self) {
        for pool in self.made.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            pool.close();
        }
    }
}

/// The pools and the permits of one server.
pub struct Pools {
    wire: ThreadPools<WireManager>,
    target: Target,
    /// The floor its connections are judged by, for a primary behind a service address.
    behind: Option<Arc<Behind>>,
    per_thread: usize,
    /// At most `pool_max_size` operations at once, whatever thread they run on and
    /// past that a request waits
    /// `pool_wait_timeout_ms`, then gets 503.
    permits: Semaphore,
    wait_timeout: Duration,
    connect_timeout: Duration,
}

impl Pools {
    /// Opens no connection. Fails here, at start-up, if building a pool would ever fail.
    pub fn new(
        target: Target,
        db: &DatabaseSettings,
        behind: Option<Arc<Behind>>,
    ) -> Result<Self, BuildError> {
        build_managed(
            WireManager::new(target.clone()),
            db.pool_max_size,
            db.pool_wait_timeout(),
            db.connect_timeout(),
        )?;
        Ok(Self {
            wire: ThreadPools::new(),
            target,
            behind,
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

    /// A wire connection from this thread's pool (made on its first use here).
    pub async fn checkout(&self) -> Result<WireObject, Unpooled> {
        let pool = self.wire.get(self.permits.is_closed(), || {
            let manager = match &self.behind {
                Some(behind) => WireManager::behind(self.target.clone(), Arc::clone(behind)),
                None => WireManager::new(self.target.clone()),
            };
            build_managed(
                manager,
                self.per_thread,
                self.wait_timeout,
                self.connect_timeout,
            )
        })?;
        pool.get()
            .await
            .map(WireObject::new)
            .map_err(|e| self.unpooled(e))
    }

    /// Closes every thread's pools: idle connections are dropped, new operations fail.
    pub fn close(&self) {
        self.permits.close();
        self.wire.close();
    }

    fn unpooled<E: Display>(&self, err: PoolError<E>) -> Unpooled {
        match err {
            PoolError::Timeout(TimeoutType::Wait) => self.saturated(),
            PoolError::Timeout(_) => Unpooled::Down(format!(
                "no connection within {} ms",
                self.connect_timeout.as_millis()
            )),
            PoolError::Backend(e) => Unpooled::Down(e.to_string()),
            e => Unpooled::Down(e.to_string()),
        }
    }

    fn saturated(&self) -> Unpooled {
        Unpooled::Saturated {
            waited_ms: self.wait_timeout.as_millis() as u64,
        }
    }
}
