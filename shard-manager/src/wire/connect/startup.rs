//! Opening a wire connection: TCP, the startup message, signing in (see `auth`).
//! Statements are prepared with the first exchange (see `statements`).

use postgres_protocol::message::frontend;
use tokio::net::TcpStream;

use super::auth::sign_in;
use super::target::Target;
use crate::wire::conn::WireConn;
use crate::wire::error::WireError;

/// Opens a connection to `target` (the caller bounds the time: see the pool's create
/// timeout).
pub async fn connect(target: &Target) -> Result<WireConn, WireError> {
    let stream = TcpStream::connect(&target.addr).await?;
    // Every exchange is one write answered by one flush: never wait to coalesce.
    stream.set_nodelay(true)?;
    let stream = target.link.secure(stream, &target.addr).await?;
    let mut conn = WireConn::new(stream);
    conn.start();
    frontend::startup_message(
        [
            ("user", target.user.as_str()),
            ("database", target.database.as_str()),
            ("application_name", "shardgate"),
            ("client_encoding", "UTF8"),
            ("options", target.options.as_str()),
        ],
        &mut conn.out,
    )?;
    conn.flush().await?;
    sign_in(&mut conn, target).await?;
    let ended = conn.until_ready(None, &mut |_, _| {}).await?;
    if let Some(error) = ended.error {
        return Err(error.into());
    }
    conn.done();
    Ok(conn)
}
