//! What Shardgate's tests and topology benchmarks of the whole gateway share: a real
//! gateway in the test's process or as a child process, and the `wrk` runner. Dev-only,
//! and the one test crate that builds the gateway (`api-router`) and the admin CLI's
//! library (`shard-admin`, which migrates a test's shards): the tests of the crates
//! below them take only `test-support` (servers, scratch databases, outages), which
//! this crate stands on.
//!
//! The topology benchmark (`benches/topology`) lives here too: it measures the whole
//! gateway, so it stands above it with the helpers it shares with the tests.
//!
//! ## Layout
//! - [`app`]: a real gateway in the test's process ([`spawn_app`], [`TestApp`]) on
//!   fresh databases, its typed requests, and the problem+json assertion.
//! - [`gateway_process`]: the real `api-router` binary as a child process.
//! - [`wrk`]: one `wrk` run against a gateway process, with its CPU per request.

pub mod app;
pub mod gateway_process;
pub mod wrk;

pub use app::{
    assert_problem, json_of, metric_sum, move_slots, prepare_database, spawn_app, spawn_app_with,
    test_settings, TestApp,
};
