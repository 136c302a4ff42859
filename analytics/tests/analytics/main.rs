//! Black-box tests of the recorder through its public API, compiled as one binary.
//! Time is injected with `started_at`/`record_at`/`report_at`, so nothing sleeps.

mod cluster;
mod errors;
mod exposition;
mod helpers;
mod report;
mod schema;
