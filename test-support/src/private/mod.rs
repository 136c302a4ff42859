//! PostgreSQL servers of a test's own, and HAProxy before them (ports 26600-26999),
//! started and stopped by the test and removed when dropped; nothing of the shared topology is touched.
//!
//! - [`programs`]: PostgreSQL's programs and `pg_autoctl`, found as `setup.sh` finds
//!   them and run as `postgres` when the tests run as root.
//! - [`pair`]: a primary and a streaming replica (promoted by hand), or a plain primary.
//! - [`localized`]: a plain server whose messages are in another language.
//! - [`autoctl`]: a pg_auto_failover formation: a monitor and two nodes.
//! - [`keepers`]: pg_autoctl's commands and keepers for a formation, each in its
//!   namespace.
//! - [`placement`]: where a formation's processes run: on loopback, or a host each.
//! - [`netns`]: a network of the test's own (a bridge, a namespace per host) to cut.
//! - [`haproxy`]: HAProxy in front of a formation's nodes: an address that leads to the
//!   primary, one spread over the standbys, each node's role read by signing in.

pub mod autoctl;
pub mod haproxy;
pub mod keepers;
pub mod localized;
pub mod netns;
pub mod pair;
pub mod placement;
pub mod programs;
