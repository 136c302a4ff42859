//! [`Export`]: every shard that serves keys, read page by page in keyset order, one
//! shard after the other. The first page of every shard is read before anything is
//! returned (a shard that cannot be read fails the export before it starts); later
//! pages are read one at a time, when asked for, so a slow reader holds the export at
//! one page.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::cluster::{Cluster, Shard};
use crate::routing::{MapVersion, ShardId};
use crate::store::{Record, TableName};
use crate::wal::Consistency;
use crate::wire::{export_page, ExportPage, Owned, PageAsk};

use super::ExportError;

/// What to export and how large a page may be.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub table: TableName,
    /// Only records whose shard key starts with this (`""`: all).
    pub key_prefix: String,
    /// Rows per page read from a shard.
    pub page_rows: u32,
    /// Bytes per page read from a shard (the first record always fits; see
    /// `store::page`).
    pub page_bytes: usize,
}

/// Records of one shard, in `(shard_key, id)` order.
#[derive(Debug)]
pub struct ShardPage {
    pub shard: ShardId,
    pub records: Vec<Record>,
}

/// An export under way (see the module doc of [`crate::export`]).
pub struct Export {
    cluster: Arc<Cluster>,
    spec: ExportSpec,
    version: MapVersion,
    parts: VecDeque<Part>,
}

/// One shard's progress.
struct Part {
    shard: Arc<Shard>,
    /// What the shard owned at its first page: every later page must say the same.
    owned: Owned,
    /// The first page, until it is handed out.
    first: Option<Vec<Record>>,
    /// The last (shard key, id) read.
    after: Option<(String, String)>,
    /// Whether the shard may hold more after `after`.
    more: bool,
}

impl Export {
    /// Reads the first page of every shard that serves keys (all at once), so that a
    /// shard that cannot be read fails the export here, before anything is sent.
    pub async fn start(cluster: Arc<Cluster>, spec: ExportSpec) -> Result<Self, ExportError> {
        let (version, shards) = {
            let router = cluster.router();
            let shards: Vec<Arc<Shard>> = cluster
                .shards()
                .iter()
                .filter(|s| router.serves_keys(s.id))
                .cloned()
                .collect();
            (router.version(), shards)
        };
        let firsts = shards
            .iter()
            .map(|shard| read(&cluster, shard, &spec, None));
        let pages = futures_util::future::join_all(firsts).await;
        let mut parts = VecDeque::with_capacity(shards.len());
        for (shard, page) in shards.into_iter().zip(pages) {
            let page = page?;
            let mut part = Part {
                shard,
                owned: page.owned,
                first: None,
                after: None,
                more: false,
            };
            part.take(page);
            parts.push_back(part);
        }
        let export = Self {
            cluster,
            spec,
            version,
            parts,
        };
        export.same_map()?;
        Ok(export)
    }

    /// The map version the export started with.
    pub fn map_version(&self) -> MapVersion {
        self.version
    }

    /// The next page of records, None once every shard is read. An error ends the
    /// export: it cannot go on without risking a repeated or a missing record.
    pub async fn next_page(&mut self) -> Result<Option<ShardPage>, ExportError> {
        loop {
            let Some(part) = self.parts.front_mut() else {
                return Ok(None);
            };
            let shard = part.shard.id;
            if let Some(records) = part.first.take().filter(|r| !r.is_empty()) {
                return Ok(Some(ShardPage { shard, records }));
            }
            if !part.more {
                self.parts.pop_front();
                continue;
            }
            let after = part.after.as_ref().map(|(k, i)| (k.as_str(), i.as_str()));
            let page = read(&self.cluster, &part.shard, &self.spec, after).await?;
            if page.owned != part.owned {
                return Err(ExportError::OwnershipChanged {
                    shard,
                    before: part.owned,
                    after: page.owned,
                });
            }
            part.take(page);
            // Checked after the page was read: while this gateway still routes with the
            // export's map, no row of a slot it owns there has been deleted.
            self.same_map()?;
        }
    }

    /// A gateway whose map moved on may see old rows deleted on the shard that gave a
    /// slot away (they go once every gateway routes with the new map).
    fn same_map(&self) -> Result<(), ExportError> {
        let now = self.cluster.router().version();
        match now == self.version {
            true => Ok(()),
            false => Err(ExportError::MapChanged {
                from: self.version,
                to: now,
            }),
        }
    }
}

impl Part {
    /// Keeps a page to hand out, and where the next one starts.
    fn take(&mut self, page: ExportPage) {
        if let Some(last) = page.records.last() {
            self.after = Some((last.shard_key.clone(), last.id.clone()));
        }
        self.more = page.more;
        self.first = Some(page.records);
    }
}

/// One page of `shard`, from its primary (a replica may not have every record that
/// existed when the export began).
async fn read(
    cluster: &Cluster,
    shard: &Shard,
    spec: &ExportSpec,
    after: Option<(&str, &str)>,
) -> Result<ExportPage, ExportError> {
    shard.ready()?;
    let ask = PageAsk {
        table: spec.table.as_str(),
        key_prefix: &spec.key_prefix,
        after,
        rows: spec.page_rows,
        max_bytes: spec.page_bytes,
    };
    let replication = &cluster.settings().replication;
    let served = shard
        .read(Consistency::Strong, replication, async |conn| {
            export_page(conn, ask).await
        })
        .await?;
    Ok(served.value)
}
