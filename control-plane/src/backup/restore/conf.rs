//! What a restore needs from pgBackRest's configuration file: each stanza's data
//! directory (`pg1-path`) and port (`pg1-port`), and the other servers it lists
//! (`pg2-path`, `pg2-port`, ...: the other nodes of an HA formation). An INI file:
//! `[section]` lines, then `key=value` lines; `#` and `;` start comments. Pure: tested
//! beside it.

use std::collections::BTreeMap;

/// One stanza's server as the configuration places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaConf {
    /// `pg1-path`: the data directory pgBackRest restores into.
    pub path: Option<String>,
    /// `pg1-port` (PostgreSQL's default, 5432, when absent).
    pub port: u16,
    /// The other servers (`pg2-...` and up), by their number.
    pub others: Vec<OtherConf>,
}

/// A server of a stanza other than `pg1`: another node of its HA formation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherConf {
    /// N of `pgN-path`: 2 and up.
    pub index: u32,
    pub path: Option<String>,
    pub port: u16,
}

/// Every stanza section of the file (not `[global]` nor `[global:command]`).
pub fn stanzas(text: &str) -> BTreeMap<String, StanzaConf> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            current = (!name.starts_with("global")).then(|| name.to_owned());
            if let Some(name) = &current {
                out.entry(name.clone()).or_insert(StanzaConf {
                    path: None,
                    port: 5432,
                    others: Vec::new(),
                });
            }
            continue;
        }
        let (Some(stanza), Some((key, value))) = (&current, line.split_once('=')) else {
            continue;
        };
        let entry = out.entry(stanza.clone()).or_insert(StanzaConf {
            path: None,
            port: 5432,
            others: Vec::new(),
        });
        let value = value.trim();
        match server_key(key.trim()) {
            Some((1, "path")) => entry.path = Some(value.to_owned()),
            Some((1, "port")) => entry.port = value.parse().unwrap_or(entry.port),
            Some((index, what @ ("path" | "port"))) => {
                let i = match entry.others.iter().position(|o| o.index == index) {
                    Some(i) => i,
                    None => {
                        entry.others.push(OtherConf {
                            index,
                            path: None,
                            port: 5432,
                        });
                        entry.others.len() - 1
                    }
                };
                let other = &mut entry.others[i];
                match what {
                    "path" => other.path = Some(value.to_owned()),
                    _ => other.port = value.parse().unwrap_or(other.port),
                }
            }
            _ => {}
        }
    }
    for conf in out.values_mut() {
        conf.others.sort_by_key(|o| o.index);
    }
    out
}

/// `pgN-WHAT` as (N, WHAT), for N of 1 and up.
fn server_key(key: &str) -> Option<(u32, &str)> {
    let (server, what) = key.strip_prefix("pg")?.split_once('-')?;
    let index: u32 = server.parse().ok().filter(|n| *n >= 1)?;
    Some((index, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stanza_has_its_data_directory_and_port() {
        let text = "# written by setup.sh\n[global]\nrepo1-path=/r\npg1-path=/not/a/stanza\n\n\
                    [meta]\npg1-path=/d/meta\npg1-port=25430\n\n[shard0]\n pg1-path = /d/shard0-primary \n\
                    ; a comment\npg1-port=25432\n[global:archive-push]\nprocess-max=2\n[shard1]\npg1-port=25433\n";
        let got = stanzas(text);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got["meta"].path.as_deref(), Some("/d/meta"));
        assert_eq!(got["meta"].port, 25430);
        assert_eq!(got["shard0"].path.as_deref(), Some("/d/shard0-primary"));
        assert_eq!(got["shard0"].port, 25432);
        assert_eq!(got["shard1"].path, None);
        assert_eq!(got["shard1"].port, 25433);
        assert!(got["shard0"].others.is_empty());
    }

    #[test]
    fn the_other_servers_of_a_stanza_are_listed_by_number() {
        let text = "[shard0]\npg1-path=/d/p\npg1-port=25432\npg3-port=25548\npg2-path=/d/r0\n\
                    pg2-port=25532\npg3-path=/d/r1\npg2-socket-path=/s\npgx-path=/no\npg0-path=/no\n";
        let got = &stanzas(text)["shard0"];
        assert_eq!(got.path.as_deref(), Some("/d/p"));
        assert_eq!(got.port, 25432);
        let others: Vec<(u32, Option<&str>, u16)> = got
            .others
            .iter()
            .map(|o| (o.index, o.path.as_deref(), o.port))
            .collect();
        assert_eq!(
            others,
            [(2, Some("/d/r0"), 25532), (3, Some("/d/r1"), 25548)]
        );
    }

    #[test]
    fn a_missing_port_is_postgresql_s_default() {
        let got = stanzas("[s]\npg1-path=/x\n");
        assert_eq!(got["s"].port, 5432);
    }
}
