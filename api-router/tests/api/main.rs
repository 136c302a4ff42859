//! Black-box API tests: one binary, each test spawns its own gateway and databases.

mod analytics;
mod audit;
mod auth;
mod bad_input;
mod bulk;
mod cache;
mod cache_gateways;
mod cache_shared;
mod commit_loss;
mod consistency;
mod edge;
mod fanout;
mod hardening;
mod helpers;
mod idempotency;
mod idempotency_cache;
mod idempotency_reuse;
mod limits_keys;
mod load_balancer;
mod moves;
mod operations;
mod pool;
mod records;
mod schema;
mod shared_map;
mod spec;
