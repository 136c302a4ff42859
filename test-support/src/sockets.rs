//! A process's TCP connections, read from `/proc`: which of its sockets are established
//! to a given port (a gateway's Redis connections, say), without asking the peer.

use std::collections::HashSet;

/// How many of process `pid`'s sockets are established TCP connections to a remote
/// `port` (IPv4 or IPv6). 0 when the process has gone.
pub fn established_to(pid: u32, port: u16) -> usize {
    let inodes = socket_inodes(pid);
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .map(|text| established(&text, port, &inodes))
        .sum()
}

/// The inodes of the sockets among `pid`'s open files (`socket:[INODE]`).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Lines of a `/proc/net/tcp` table in state ESTABLISHED (`01`) to remote `port`
/// whose inode is one of `inodes`.
fn established(table: &str, port: u16, inodes: &HashSet<u64>) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                return false;
            };
            let remote_port = remote
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            *state == "01"
                && remote_port == Some(port)
                && inode.parse().is_ok_and(|i: u64| inodes.contains(&i))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::established;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:6713 01 00000000:00000000 00:00000000 00000000     0        0 201 1 0 20 4 30 10 -1
   2: 0100007F:A1B3 0100007F:6713 01 00000000:00000000 00:00000000 00000000     0        0 202 1 0 20 4 30 10 -1
   3: 0100007F:A1B4 0100007F:6713 06 00000000:00000000 00:00000000 00000000     0        0 203 1 0 20 4 30 10 -1
   4: 0100007F:A1B5 0100007F:6334 01 00000000:00000000 00:00000000 00000000     0        0 204 1 0 20 4 30 10 -1";

    #[test]
    fn counts_only_established_sockets_of_the_process_to_the_port() {
        // 0x6713 = 26387, 0x6334 = 25396.
        let all = [100, 201, 202, 203, 204].into_iter().collect();
        assert_eq!(
            established(TABLE, 0x6713, &all),
            2,
            "listening and TIME_WAIT left out"
        );
        assert_eq!(established(TABLE, 0x6334, &all), 1);
        let one = [202].into_iter().collect();
        assert_eq!(
            established(TABLE, 0x6713, &one),
            1,
            "another process's socket left out"
        );
        assert_eq!(established(TABLE, 6379, &all), 0);
    }
}
