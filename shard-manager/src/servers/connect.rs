//! How connections are made: the URL a server gets (timeouts travel with it; the
//! control plane's links use it) and how a thread's pool of wire connections is built.

use std::time::Duration;

use deadpool::managed::{self, BuildError, Manager, QueueMode};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// One thread's pool of connections; opens no connection yet. A pooled connection is
/// reused unless it is mid-exchange or its socket has closed, with no test query (see
/// `Server::run` for the retry that covers one found dead in use).
pub(crate) fn build_managed<M: Manager>(
    manager: M,
    size: usize,
    wait: Duration,
    connect: Duration,
) -> Result<managed::Pool<M>, BuildError> {
    managed::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(connect))
        .recycle_timeout(Some(connect))
        // Most recently used first: a small hot set of connections serves steady
        // traffic, and the rest idle.
        .queue_mode(QueueMode::Lifo)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}

/// The libpq-style URL for a server: timeouts travel with every connection.
pub fn connection_url(db: &DatabaseSettings, addr: &str) -> String {
    let password = db.password.expose_secret();
    let auth = if password.is_empty() {
        encode(&db.user)
    } else {
        format!("{}:{}", encode(&db.user), encode(password))
    };
    let connect_secs = db.connect_timeout_ms.div_ceil(1000).max(1);
    format!(
        "postgres://{auth}@{addr}/{}?connect_timeout={connect_secs}&application_name=shardgate\
         &options=-c%20statement_timeout%3D{}",
        encode(&db.dbname),
        db.statement_timeout_ms
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encodes_credentials_and_carries_timeouts() {
        let db = DatabaseSettings {
            user: "app user".into(),
            password: "p@ss:/w".to_string().into(),
            dbname: "shardgate".into(),
            connect_timeout_ms: 1500,
            statement_timeout_ms: 5000,
            txn_lock_timeout_ms: 2000,
            pool_max_size: 4,
            pool_wait_timeout_ms: 100,
            batch_point_reads: true,
            batch_writes: true,
            pool_threads: 1,
            allow_insecure_auth: false,
            sslmode: Default::default(),
            ssl_root_cert: None,
        };
        assert_eq!(
            connection_url(&db, "127.0.0.1:25432"),
            "postgres://app%20user:p%40ss%3A%2Fw@127.0.0.1:25432/shardgate?connect_timeout=2\
             &application_name=shardgate&options=-c%20statement_timeout%3D5000"
        );
    }
}
