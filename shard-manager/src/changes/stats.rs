//! What a gateway's change streams did, per table, for its metrics: the Server-Sent
//! Events streams open now, the changes sent (pages and events alike), and how old the
//! newest change of the last page was when it was sent (commit to send: the lag a
//! consumer that keeps up sees); and the cuts the gateway's pages took.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::page::Change;

/// One table's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableStreams {
    /// Server-Sent Events streams open now.
    pub open: u64,
    /// Changes sent since the gateway started.
    pub sent: u64,
    /// Seconds from the newest change of the last page with changes to its sending.
    pub lag_secs: f64,
}

/// Per table (see the module doc); shared by the gateway's workers.
#[derive(Debug, Default, Clone)]
pub struct StreamStats {
    tables: Arc<Mutex<BTreeMap<String, TableStreams>>>,
    /// Cuts taken for pages (a waiting tick's shared cut counted once).
    cuts: Arc<AtomicU64>,
}

/// An open stream, counted until dropped.
#[derive(Debug)]
pub struct OpenStream {
    stats: StreamStats,
    table: String,
}

impl StreamStats {
    /// A stream of `table` opened: counted open until the guard is dropped.
    pub fn opened(&self, table: &str) -> OpenStream {
        self.with(table, |t| t.open += 1);
        OpenStream {
            stats: self.clone(),
            table: table.to_owned(),
        }
    }

    /// A page of `table`'s changes sent now.
    pub fn sent(&self, table: &str, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let lag = changes
            .iter()
            .rev()
            .find_map(|c| DateTime::parse_from_rfc3339(&c.time).ok())
            .and_then(|at| (Utc::now() - at.with_timezone(&Utc)).num_microseconds())
            .map(|us| us.max(0) as f64 / 1e6);
        self.with(table, |t| {
            t.sent += changes.len() as u64;
            if let Some(lag) = lag {
                t.lag_secs = lag;
            }
        });
    }

    /// A page took a cut (a tick's shared cut counts once, by the reader that took it).
    pub fn cut_taken(&self) {
        self.cuts.fetch_add(1, Ordering::Relaxed);
    }

    /// Cuts taken for pages since the gateway started.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    /// Every table's figures, by name.
    pub fn tables(&self) -> Vec<(String, TableStreams)> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn with(&self, table: &str, change: impl FnOnce(&mut TableStreams)) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        change(tables.entry(table.to_owned()).or_default());
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.stats
            .with(&self.table, |t| t.open = t.open.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Operation;

    fn change(time: &str) -> Change {
        Change {
            table: "users".into(),
            shard_key: "k".into(),
            id: "i".into(),
            version: 1,
            operation: Operation::Upsert,
            data: None,
            time: time.into(),
            transaction: None,
            shard: 0,
            cursor: String::new(),
        }
    }

    #[test]
    fn streams_count_open_until_dropped_and_pages_count_their_changes() {
        let stats = StreamStats::default();
        let a = stats.opened("users");
        let b = stats.opened("users");
        drop(a);
        let second_ago = (Utc::now() - chrono::Duration::seconds(2)).to_rfc3339();
        stats.sent("users", &[change("not a time"), change(&second_ago)]);
        stats.sent("users", &[]);
        let tables = stats.tables();
        assert_eq!(tables.len(), 1);
        let (name, users) = &tables[0];
        assert_eq!(name, "users");
        assert_eq!((users.open, users.sent), (1, 2));
        assert!((1.9..5.0).contains(&users.lag_secs), "{}", users.lag_secs);
        drop(b);
        assert_eq!(stats.tables()[0].1.open, 0);
    }
}
