//! An import's change log replayed on the shards, as the jobs' replay protocol has it
//! ([`crate::jobs::replay`]): a batch of logged (key, id) pairs is read from the
//! source's `shardgate_import.log`, each pair's current source row upserted as a record
//! (or its record deleted when the row is gone), and only then are the entries
//! forgotten on the source.

use std::collections::HashSet;

use super::shards::Writer;
use super::source::Source;
use super::spec::SourceTable;
use super::ImportError;
use crate::jobs::replay::ChangeLog;

/// Import `id`'s log on its source, replayed through `writer`. Replays run inside the
/// source's transaction when the caller opened one (the fence).
pub struct SourceLog<'a> {
    pub source: &'a Source,
    pub table: &'a SourceTable,
    pub writer: &'a mut Writer,
    pub id: i64,
}

impl ChangeLog for SourceLog<'_> {
    type Error = ImportError;

    async fn replay(&mut self, limit: i64) -> Result<u64, ImportError> {
        let logged = self.source.logged(self.id, limit).await?;
        if logged.is_empty() {
            return Ok(0);
        }
        let mut pairs = Vec::new();
        let mut seen = HashSet::new();
        for entry in &logged {
            if let (Some(k), Some(i)) = (&entry.key, &entry.id) {
                if seen.insert((k.clone(), i.clone())) {
                    pairs.push((k.clone(), i.clone()));
                }
            }
        }
        let (keys, ids): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
        let found = self.source.lookup(self.table, &keys, &ids).await?;
        let present: HashSet<(&str, &str)> = found
            .iter()
            .map(|r| (r.key.as_str(), r.id.as_str()))
            .collect();
        let gone: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, i)| !present.contains(&(k.as_str(), i.as_str())))
            .cloned()
            .collect();
        self.writer.apply(&found, &gone).await?;
        // Test-only kill point (feature `faults`): applied, not yet forgotten.
        shard_manager::fault::IMPORTER.reach("replay");
        let seqs: Vec<i64> = logged.iter().map(|l| l.seq).collect();
        self.source.forget(&seqs).await?;
        Ok(seqs.len() as u64)
    }

    async fn behind(&mut self) -> Result<i64, ImportError> {
        self.source.backlog(self.id).await
    }
}
