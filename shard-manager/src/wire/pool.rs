//! Pooled wire connections: a deadpool manager that opens them and hands one out again
//! only when it is idle and still open (see [`WireConn::is_reusable`]).

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use super::conn::WireConn;
use super::connect::{connect, Target};
use super::error::WireError;

/// Opens and checks wire connections to one server.
#[derive(Debug)]
pub struct WireManager {
    target: Target,
}

impl managed::Manager for WireManager {
    type Type = WireConn;
    type Error = WireError;

    async fn create(&self) -> Result<WireConn, WireError> {
        connect(&self.target).await
    }

    async fn recycle(&self, conn: &mut WireConn, _: &Metrics) -> RecycleResult<WireError> {
        if conn.is_reusable() {
            Ok(())
        } else {
            Err(RecycleError::message("closed, or left mid-exchange"))
        }
    }
}

pub type WireObject = managed::Object<WireManager>;

impl WireManager {
    pub fn new(target: Target) -> Self {
        Self { target }
    }
}
