//! The PROXY protocol header (HAProxy's `send-proxy` / `send-proxy-v2`), versions 1
//! (text) and 2 (binary), read from the first bytes of a connection. Pure: it says how
//! many bytes the header took and which client it declares; the connection's own
//! bytes after it are HTTP. Only ever read from a trusted proxy (see `serve`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's twelve-byte signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's opening.
const V1_START: &[u8; 6] = b"PROXY ";
/// Version 1's longest line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;
/// Version 2's longest header accepted (16 bytes, addresses and TLVs): larger is refused.
pub const V2_MAX: usize = 4096;

/// What the bytes read so far are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// They start like a header: read more.
    NeedMore,
    /// No header: the bytes are the client's own (HTTP).
    Absent,
    /// A header of `len` bytes declaring `client` (None: a health check of the proxy's
    /// own, `LOCAL` or `UNKNOWN`, or an address family other than TCP over IP).
    Header {
        len: usize,
        client: Option<SocketAddr>,
    },
    /// It starts like a header but is not a valid one.
    Invalid(String),
}

/// Reads the header at the start of `buf`, if there is one.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.starts_with(V2_SIGNATURE) {
        return v2(buf);
    }
    if buf.starts_with(V1_START) {
        return v1(buf);
    }
    let prefix_of = |sig: &[u8]| buf.len() < sig.len() && sig.starts_with(buf);
    match prefix_of(V2_SIGNATURE) || prefix_of(V1_START) {
        true => Parsed::NeedMore,
        false => Parsed::Absent,
    }
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, `TCP6` likewise, or `UNKNOWN ...`.
fn v1(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return match buf.len() >= V1_MAX {
            true => Parsed::Invalid(format!("a PROXY v1 line longer than {V1_MAX} bytes")),
            false => Parsed::NeedMore,
        };
    };
    let len = end + 2;
    let Ok(line) = std::str::from_utf8(&buf[V1_START.len()..end]) else {
        return Parsed::Invalid("a PROXY v1 line that is not ASCII".into());
    };
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["UNKNOWN", ..] => Parsed::Header { len, client: None },
        [family @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip = src.parse::<IpAddr>().ok().filter(|ip| match *family {
                "TCP4" => ip.is_ipv4(),
                _ => ip.is_ipv6(),
            });
            match (ip, sport.parse::<u16>()) {
                (Some(ip), Ok(port)) => Parsed::Header {
                    len,
                    client: Some(SocketAddr::new(ip, port)),
                },
                _ => Parsed::Invalid(format!("a PROXY v1 line with a bad source: {line:?}")),
            }
        }
        _ => Parsed::Invalid(format!("a PROXY v1 line of an unknown form: {line:?}")),
    }
}

/// Signature, version and command, family, length, then the addresses.
fn v2(buf: &[u8]) -> Parsed {
    if buf.len() < 16 {
        return Parsed::NeedMore;
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Parsed::Invalid(format!(
            "a PROXY v2 header with version/command {:#04x}",
            buf[12]
        ));
    }
    let len = 16 + u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if len > V2_MAX {
        return Parsed::Invalid(format!(
            "a PROXY v2 header of {len} bytes (at most {V2_MAX})"
        ));
    }
    if buf.len() < len {
        return Parsed::NeedMore;
    }
    if command == 0 {
        // LOCAL: the proxy's own connection (a health check).
        return Parsed::Header { len, client: None };
    }
    let body = &buf[16..len];
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    let client = match buf[13] {
        // TCP over IPv4: source, destination (4 bytes each), then the two ports.
        0x11 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(ip.into(), port(8)))
        }
        // TCP over IPv6: 16 bytes each.
        0x21 if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            Some(SocketAddr::new(Ipv6Addr::from(octets).into(), port(32)))
        }
        0x11 | 0x21 => {
            return Parsed::Invalid("a PROXY v2 header too short for its addresses".into())
        }
        _ => None,
    };
    Parsed::Header { len, client }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_tcp4(src: [u8; 4], sport: u16, extra: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.extend([0x21, 0x11]);
        out.extend(((12 + extra.len()) as u16).to_be_bytes());
        out.extend(src);
        out.extend([127, 0, 0, 1]);
        out.extend(sport.to_be_bytes());
        out.extend(8081u16.to_be_bytes());
        out.extend(extra);
        out
    }

    #[test]
    fn version_1_lines_declare_their_client() {
        let line = b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 8081\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(line),
            Parsed::Header {
                len: 45,
                client: Some("203.0.113.7:51000".parse().unwrap())
            }
        );
        assert_eq!(
            parse(b"PROXY TCP6 2001:db8::1 ::1 40000 8081\r\n"),
            Parsed::Header {
                len: 39,
                client: Some("[2001:db8::1]:40000".parse().unwrap())
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                len: 15,
                client: None
            }
        );
    }

    #[test]
    fn version_2_headers_declare_their_client_and_skip_tlvs() {
        let header = v2_tcp4([198, 51, 100, 9], 40123, &[0x04, 0, 1, 0xaa]);
        let mut bytes = header.clone();
        bytes.extend(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse(&bytes),
            Parsed::Header {
                len: header.len(),
                client: Some("198.51.100.9:40123".parse().unwrap())
            }
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Parsed::Header {
                len: 16,
                client: None
            }
        );
    }

    #[test]
    fn partial_headers_wait_and_other_bytes_are_http() {
        let header = v2_tcp4([198, 51, 100, 9], 1, &[]);
        for cut in [1, 5, 12, 15, 20] {
            assert_eq!(parse(&header[..cut]), Parsed::NeedMore, "v2 cut at {cut}");
        }
        assert_eq!(parse(b"PRO"), Parsed::NeedMore);
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Parsed::NeedMore);
        assert_eq!(parse(b""), Parsed::NeedMore);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Absent);
        assert_eq!(parse(b"PRIX"), Parsed::Absent);
        assert_eq!(parse(b"\r\n\r\nx"), Parsed::Absent);
    }

    #[test]
    fn malformed_headers_are_invalid() {
        for bad in [
            &b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n"[..],
            b"PROXY TCP4 ::1 127.0.0.1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 127.0.0.1 99999 2\r\n",
            b"PROXY SCTP 1.2.3.4 127.0.0.1 1 2\r\n",
        ] {
            assert!(matches!(parse(bad), Parsed::Invalid(_)), "{bad:?}");
        }
        let long = [b"PROXY ".as_slice(), &[b'x'; 120]].concat();
        assert!(matches!(parse(&long), Parsed::Invalid(_)));
        let mut wrong_version = V2_SIGNATURE.to_vec();
        wrong_version.extend([0x31, 0x11, 0, 0]);
        assert!(matches!(parse(&wrong_version), Parsed::Invalid(_)));
    }
}
