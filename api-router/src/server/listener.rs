//! The gateway's listening socket, with room for a burst of new connections.
//!
//! `std::net::TcpListener::bind` listens with a backlog of 128. When a thousand clients
//! connect at once (a load balancer's pool filling, a load test starting), the kernel
//! drops every handshake past the 128 not yet accepted (`ListenOverflows` in `nstat`),
//! and those clients wait for their SYN to be sent again, 1 s later, then 3 s. Bound
//! here with [`BACKLOG`] instead (the kernel caps it at `net.core.somaxconn`), they
//! wait in the queue for the acceptor, which takes them in microseconds.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// Connections completed but not yet accepted that the kernel keeps (actix-web's own
/// default for the sockets it binds).
pub const BACKLOG: i32 = 2048;

/// Binds `addr` (`host:port`; port 0 picks a free port) and listens with [`BACKLOG`]:
/// a blocking listener, like `TcpListener::bind`'s (`SO_REUSEADDR`, close-on-exec), so
/// the HTTP server takes it as it took that one. Each address `addr` resolves to is
/// tried in turn; the last error is returned when none binds.
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for at in addr.to_socket_addrs()? {
        match bind_one(at) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

fn bind_one(at: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&at.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's cap on any backlog.
    fn somaxconn() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(128)
    }

    /// `clients` connect at once while nothing accepts: the kernel queues
    /// min(backlog, somaxconn) + 1 of them and drops the handshakes of the rest (sent
    /// again a second later). Counted by accepting without blocking. The connects do
    /// not block, so a dropped one costs the test nothing.
    fn queued(listener: &TcpListener, clients: usize) -> usize {
        let at: socket2::SockAddr = listener.local_addr().unwrap().into();
        let _clients: Vec<Socket> = (0..clients)
            .map(|_| {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                s.set_nonblocking(true).unwrap();
                let _ = s.connect(&at); // EINPROGRESS
                s
            })
            .collect();
        // Loopback handshakes complete within connect; some slack all the same.
        std::thread::sleep(std::time::Duration::from_millis(200));
        listener.set_nonblocking(true).unwrap();
        std::iter::from_fn(|| listener.accept().ok()).count()
    }

    #[test]
    fn a_burst_of_connections_waits_in_the_queue() {
        let clients = 600;
        let listener = bind("127.0.0.1:0").unwrap();
        let expected = clients.min(somaxconn().min(BACKLOG as usize) + 1);
        assert!(expected > 129, "net.core.somaxconn is too low to tell");
        assert_eq!(queued(&listener, clients), expected);
    }

    #[test]
    fn std_bind_keeps_only_128() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(queued(&listener, 600), 129);
    }

    #[test]
    fn port_zero_is_read_back_and_a_bad_address_refused() {
        let listener = bind("127.0.0.1:0").unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
        assert!(bind("not an address").is_err());
    }
}
