//! Where and as whom a wire connection signs in: [`Target`], built once per server
//! from `[database]`; read by `startup` (the connection) and `auth` (signing in).

use secrecy::SecretString;

use super::tls::Link;
use crate::config::DatabaseSettings;

/// Where and as whom a wire connection signs in; the statement timeout travels with
/// the startup message, as it does in a control-plane link's URL (`connection_url`).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub(in crate::wire) user: String,
    pub(in crate::wire) password: SecretString,
    pub(in crate::wire) database: String,
    pub(in crate::wire) options: String,
    /// Whether a cleartext password or MD5 may be sent (`database.allow_insecure_auth`).
    pub(in crate::wire) allow_insecure_auth: bool,
    /// Plain TCP or TLS (`database.sslmode`).
    pub(in crate::wire) link: Link,
}

impl Target {
    pub fn new(db: &DatabaseSettings, addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            user: db.user.clone(),
            password: db.password.clone(),
            database: db.dbname.clone(),
            // The server looks every second, while a statement runs, whether the
            // gateway's socket is still there: a statement of a connection the gateway
            // let go mid-exchange (its client hung up) stops within a second, with
            // whatever it held, rather than run on to its end.
            options: format!(
                "-c statement_timeout={} -c client_connection_check_interval=1000",
                db.statement_timeout_ms
            ),
            allow_insecure_auth: db.allow_insecure_auth,
            link: Link::new(db),
        }
    }
}
