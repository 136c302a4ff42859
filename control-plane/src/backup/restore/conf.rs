//! What a restore needs from pgBackRest's configuration file: each stanza's data
//! directory (`pg1-path`) and port (`pg1-port`). An INI file: `[section]` lines, then
//! `key=value` lines; `#` and `;` start comments. Pure: tested beside it.

use std::collections::BTreeMap;

/// One stanza's server as the configuration places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaConf {
    /// `pg1-path`: the data directory pgBackRest restores into.
    pub path: Option<String>,
    /// `pg1-port` (PostgreSQL's default, 5432, when absent).
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
                });
            }
            continue;
        }
        let (Some(stanza), Some((key, value))) = (&current, line.split_once('=')) else {
            continue;
        };
        let entry = out.get_mut(stanza).expect("inserted with its section");
        match key.trim() {
            "pg1-path" => entry.path = Some(value.trim().to_owned()),
            "pg1-port" => entry.port = value.trim().parse().unwrap_or(entry.port),
            _ => {}
        }
    }
    out
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
    }

    #[test]
    fn a_missing_port_is_postgresql_s_default() {
        let got = stanzas("[s]\npg1-path=/x\n");
        assert_eq!(got["s"].port, 5432);
    }
}
