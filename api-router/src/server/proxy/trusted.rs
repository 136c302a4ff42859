//! `server.trusted_proxies`: the addresses whose PROXY protocol header is believed, as
//! CIDR blocks (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`) or single addresses.

use std::net::IpAddr;

/// One block of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The trusted proxies; empty trusts none (every peer is the client itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

impl TrustedProxies {
    /// Parses the configured list, naming the first entry that is not an address or
    /// a CIDR block.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| block(e))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a connection from `ip` may declare its client.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|b| b.contains(ip))
    }
}

fn block(entry: &str) -> Result<Block, String> {
    let bad = || {
        format!(
            "server.trusted_proxies entry {entry:?} is not an address or a CIDR block \
             (e.g. \"127.0.0.1/32\", \"10.0.0.0/8\", \"::1/128\")"
        )
    };
    let (ip, prefix) = entry.split_once('/').unwrap_or((entry, ""));
    let net = ip
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| bad())?
        .to_canonical();
    let max = if net.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        "" => max,
        p => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(bad)?,
    };
    Ok(Block { net, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let t = trusted(&["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"]);
        for ip in ["127.0.0.1", "10.200.3.4", "::ffff:10.1.1.1", "2001:db8::7"] {
            assert!(t.trusts(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.2", "11.0.0.1", "::1", "2001:db9::1"] {
            assert!(!t.trusts(ip.parse().unwrap()), "{ip}");
        }
        assert!(trusted(&["0.0.0.0/0"]).trusts("203.0.113.1".parse().unwrap()));
        assert!(trusted(&["::1"]).trusts("::1".parse().unwrap()));
        assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["localhost", "10.0.0.0/33", "::/129", "1.2.3.4/x", ""] {
            let e = TrustedProxies::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
