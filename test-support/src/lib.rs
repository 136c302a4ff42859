//! What Shardgate's integration tests and topology benchmarks share below the gateway,
//! against the real PostgreSQL/Redis topology that `./setup.sh up` starts. Dev-only: the
//! crates whose tests use it take it as a dev-dependency, never as a dependency. It
//! builds the request path and the control plane, never the gateway nor the CLI: a
//! gateway for a test (in its process, as a child process, under `wrk`) is `test-app`'s,
//! which stands on this crate.
//!
//! The benchmarks of the control plane's failovers on private servers (`benches/`:
//! `outage`, `replication`, `async_loss`, `netcut`) live here too, above the control
//! plane they drive, with the harness they share with its failover tests.
//!
//! ## Layout
//! - [`repo`]: the repository under test, its `setup.sh` and the superuser's password.
//! - [`scratch`]: scratch databases for tests without a gateway: a whole cluster (the
//!   request path's and the control plane's tests), a metadata database, migrations on
//!   a server of the test's own.
//! - [`maintenance`]: statements on a server's maintenance database, and the runtime a
//!   drop guard's clean-up runs on.
//! - [`outage`]: real outages of the shared topology, one test at a time, always undone.
//! - [`import_source`]: an import's source database, its table of orders and its writer.
//! - [`private`]: PostgreSQL servers of a test's own: a pair, a pg_auto_failover
//!   formation, the network to cut them off, a server whose messages are in another language.
//! - [`failover`]: a shard on those servers that fails over, its load and checks.
//! - [`backup`]: real pgBackRest on private servers, the admin CLI run against them,
//!   and the load a restore point is named under (the backup tests' and benchmark's).
//! - [`otlp_receiver`]: an OTLP/HTTP receiver in the test, keeping the spans a process
//!   under test exports (the gateway's, the admin CLI's moves).
//! - [`sockets`]: a process's established TCP connections to a port, from `/proc`.
//! - [`wait`]: blocking work off the runtime, and polling with a bound.
//! - [`bench`]: a benchmark binary's run: only under `cargo bench`, on its runtime.

pub mod backup;
pub mod bench;
pub mod failover;
pub mod import_source;
pub mod maintenance;
pub mod otlp_receiver;
pub mod outage;
pub mod private;
pub mod repo;
pub mod scratch;
pub mod sockets;
pub mod wait;

pub use repo::{repo_root, setup_script, setup_sh};
