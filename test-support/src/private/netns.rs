//! A network of the test's own, so a server can be cut off rather than killed: a bridge
//! in this (the root) namespace with an address, and one network namespace per host,
//! joined to the bridge by a veth pair, with an address in the same private /24
//! (`10.213.X.0/24`, X from the test's pid). The test process reaches every host through
//! the bridge; [`Net::cut`] takes a host's link down on the bridge side, so its
//! processes stay alive and its packets go nowhere (connections hang, nothing is
//! refused), and [`Net::heal`] brings it back. Dropping the net kills whatever still
//! runs in its namespaces and deletes the namespaces, the veths and the bridge, however
//! the test ends.
//!
//! Needs root (`CAP_NET_ADMIN`): [`Net::create`] says so with [`NetError`] rather than
//! panic, so a test can skip where it cannot build one.

use std::io::ErrorKind;
use std::process::Command;
use std::time::Duration;

/// Why the net could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `ip` failed (not root, no network namespaces or bridges) or is missing.
    #[error("`{command}` failed: {output}")]
    Failed { command: String, output: String },
    /// A host made did not answer from this namespace within 7.5 s.
    #[error("{addr} does not answer through the bridge")]
    Unreachable { addr: String },
}

/// One host: its namespace, its link's bridge side and its address.
struct Host {
    netns: String,
    veth: String,
    addr: String,
}

pub struct Net {
    bridge: String,
    /// This namespace's address on the bridge: what the hosts see the test (and a
    /// monitor run here) connect from.
    pub root_addr: String,
    hosts: Vec<Host>,
}

impl Net {
    /// A bridge and `hosts` namespaces on it, named after the test's pid. Whatever was
    /// made before a failing step is deleted again.
    pub fn create(hosts: usize) -> Result<Net, NetError> {
        let pid = std::process::id();
        let subnet = format!("10.213.{}", 20 + pid % 200);
        let mut net = Net {
            bridge: format!("sgbr{pid}"),
            root_addr: format!("{subnet}.1"),
            hosts: Vec::new(),
        };
        // A previous run with the same pid left nothing behind, or this fails on it.
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.root_addr),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for i in 0..hosts {
            let host = Host {
                netns: format!("sgcut-{pid}-{i}"),
                veth: format!("sgv{pid}n{i}"),
                addr: format!("{subnet}.{}", 10 + i),
            };
            ip(&["netns", "add", &host.netns])?;
            net.hosts.push(host);
            let host = &net.hosts[i];
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &host.netns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            ip(&[
                "link",
                "add",
                &host.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &host.netns,
            ])?;
            ip(&["link", "set", &host.veth, "master", &net.bridge])?;
            ip(&["link", "set", &host.veth, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
            inside(&["addr", "add", &format!("{}/24", host.addr), "dev", "eth0"])?;
            inside(&["link", "set", "eth0", "up"])?;
        }
        net.wait_reachable()?;
        Ok(net)
    }

    /// The hosts' /24, as a pg_hba address (`10.213.X.0/24`).
    pub fn lan(&self) -> String {
        let subnet = self.root_addr.rsplit_once('.').expect("an IPv4 address").0;
        format!("{subnet}.0/24")
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> &str {
        &self.hosts[i].addr
    }

    /// Host `i`'s network namespace, for `ip netns exec`.
    pub fn netns(&self, i: usize) -> &str {
        &self.hosts[i].netns
    }

    /// Host `i` cut off from everything: its link down on the bridge side. Its
    /// processes run on; what they send and what is sent to them is lost.
    pub fn cut(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].veth, "down"]).expect("cut the host's link");
    }

    /// Host `i`'s link up again.
    pub fn heal(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].veth, "up"]).expect("heal the host's link");
    }

    /// Waits until every host answers from this namespace: a TCP connection to a port
    /// nothing listens on is refused at once by a reachable host.
    fn wait_reachable(&self) -> Result<(), NetError> {
        for host in &self.hosts {
            let addr = std::net::SocketAddr::from((
                host.addr
                    .parse::<std::net::Ipv4Addr>()
                    .expect("an IPv4 address"),
                9,
            ));
            let answered = (0..50).any(|_| {
                let tried = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100));
                let refused = matches!(&tried, Err(e) if e.kind() == ErrorKind::ConnectionRefused);
                if !refused {
                    std::thread::sleep(Duration::from_millis(50));
                }
                refused
            });
            if !answered {
                return Err(NetError::Unreachable {
                    addr: host.addr.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for host in &self.hosts {
            // Whatever still runs in there (a keeper, a postmaster) goes first.
            if let Ok(out) = Command::new("ip")
                .args(["netns", "pids", &host.netns])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            // Deleting the namespace deletes its end of the veth, and so the pair.
            let _ = ip(&["link", "del", &host.veth]);
            let _ = ip(&["netns", "del", &host.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// `ip args...`, its failure as a [`NetError`].
fn ip(args: &[&str]) -> Result<(), NetError> {
    run(Command::new("ip").args(args))
}

fn run(cmd: &mut Command) -> Result<(), NetError> {
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(NetError::Failed {
            command,
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
        Err(e) => Err(NetError::Failed {
            command,
            output: e.to_string(),
        }),
    }
}
