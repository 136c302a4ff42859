//! Where a pg_auto_failover formation's processes run and how they are reached: all on
//! loopback, as most tests have them, or each node on a host of its own (a network
//! namespace of `netns::Net`) so that a node can be cut off rather than killed. The
//! monitor always runs in this namespace.

use std::ops::Range;
use std::time::Duration;

use crate::private::netns::Net;
use crate::private::programs::Programs;

#[derive(Clone)]
pub struct Placement {
    /// The monitor's address (it listens on every address of this namespace).
    pub monitor_host: String,
    /// Each node's address, node 0 first: what it listens on and is known by.
    pub hosts: [String; 2],
    /// Each node's network namespace, for its keeper, its PostgreSQL and every
    /// pg_autoctl command on it; None: this namespace.
    pub netns: [Option<String>; 2],
    /// A network each node's PostgreSQL trusts every login from (the test's and the
    /// other node's), when the nodes are not on loopback (where initdb's rules do).
    pub lan: Option<String>,
    /// Where the monitor's and the nodes' ports are picked.
    pub ports: Range<u16>,
}

impl Placement {
    /// Monitor and nodes on 127.0.0.1, on ports in 26850-26899.
    pub fn loopback() -> Self {
        let local = || "127.0.0.1".to_owned();
        Placement {
            monitor_host: local(),
            hosts: [local(), local()],
            netns: [None, None],
            lan: None,
            ports: 26850..26900,
        }
    }

    /// Node `i` on `net`'s host `i`, the monitor on `net`'s bridge address, ports
    /// from `ports` (distinct ones for all: the nodes' Unix sockets share a folder).
    pub fn on(net: &Net, ports: Range<u16>) -> Self {
        Placement {
            monitor_host: net.root_addr.clone(),
            hosts: [net.addr(0).to_owned(), net.addr(1).to_owned()],
            netns: [Some(net.netns(0).to_owned()), Some(net.netns(1).to_owned())],
            lan: Some(net.lan()),
            ports,
        }
    }
}

/// Waits until the server at `host:port` answers a query (accepting connections is
/// not enough: a starting server refuses them).
pub fn wait_accepting(programs: &Programs, host: &str, port: u16) {
    for _ in 0..400 {
        let ready = programs
            .command(&programs.bin.join("pg_isready"))
            .args(["-q", "-h", host, "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing accepts on {host}:{port}");
}

/// Waits until nothing accepts connections on `host:port` any more.
pub fn wait_closed(host: &str, port: u16) {
    let addr = format!("{host}:{port}");
    let addr: std::net::SocketAddr = addr.parse().expect("an IP address and a port");
    for _ in 0..200 {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{addr} still accepts connections");
}
