//! Black-box API tests: one binary, each test spawns its own gateway and databases.

mod analytics;
mod bad_input;
mod bulk;
mod cache;
mod cache_gateways;
mod consistency;
mod fanout;
mod helpers;
mod operations;
mod pool;
mod records;
