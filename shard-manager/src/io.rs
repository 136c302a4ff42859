//! The runtime that drives database connections.
//!
//! diesel-async spawns each connection's driver task on the runtime that opened it.
//! Pools are shared by every HTTP worker, and on shutdown an idle worker stops its
//! runtime at once: connections it had opened would die under requests still running
//! on other workers. So connections are opened here, on a small runtime the cluster
//! owns, which outlives every worker and stops when the cluster is dropped.

use tokio::runtime::{Builder, Handle, Runtime};

/// Owns the connection-driver runtime; dropping it stops the drivers.
pub struct IoRuntime {
    runtime: Option<Runtime>,
}

impl IoRuntime {
    pub fn new() -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("shardgate-db")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> Option<Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // A plain drop would block, which panics inside an async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
