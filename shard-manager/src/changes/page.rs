//! One page of a table's change stream, read at a cut (see the module doc): each shard's
//! rows of the cut's delta, in version order, shards in id order, at most a page's
//! worth; the cursor after it. Waiting for a change, when none is there yet. A page
//! that ends its cut's delta is *resolved* at the time the cut was begun: every change
//! committed before that time, on every shard, is in it or in an earlier page.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::value::RawValue;

use super::cursor::{ChangeCursor, Within};
use super::error::ChangesError;
use crate::cluster::Cluster;
use crate::routing::ShardId;
use crate::store::statements::{changes_gone, changes_page};
use crate::store::TableName;
use crate::wire::WireError;

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Upsert,
    Delete,
    /// The record as it was at the cut a stream started from (`from=snapshot`).
    Snapshot,
}

/// One change of one record, as a committed write left it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub table: String,
    pub shard_key: String,
    pub id: String,
    /// The record's version after the write (a delete's: the version its deletion took).
    pub version: i64,
    pub operation: Operation,
    /// The record's document after an upsert; absent for a delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    /// When the write ran on its shard's primary (its commit followed).
    pub time: String,
    /// The transaction on several shards it was part of, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The shard whose log it came from.
    pub shard: u32,
    /// The cursor that resumes right after this change; empty for a row of a starting
    /// snapshot that is not its page's last (a stream resumed there sends the page
    /// again: see [`super::snapshot`]).
    #[serde(skip)]
    pub cursor: String,
}

/// A page of changes and where the next one starts.
#[derive(Debug)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// The cursor after the page's last change (after the whole cut, when the page
    /// holds the rest of its delta).
    pub next: ChangeCursor,
    /// When the page ends its cut's delta: the time (the gateway's clock) the cut was
    /// begun. Every change committed before it, on every shard, has been sent, in this
    /// page or an earlier one; `next` is the checkpoint that says so.
    pub resolved: Option<DateTime<Utc>>,
}

impl Cluster {
    /// The page after `cursor` of `table`'s changes, at most `limit` (≥ 1). A page
    /// never mixes two cuts' deltas: it ends at the end of its cut's delta. A stream
    /// still sending its starting snapshot sends the snapshot's next page
    /// ([`super::snapshot`]); `holder` (the caller's API key) holds that snapshot's cut.
    pub async fn changes(
        &self,
        table: &TableName,
        cursor: &ChangeCursor,
        limit: usize,
        holder: Option<&str>,
    ) -> Result<ChangePage, ChangesError> {
        self.changes_at(table, cursor, limit, holder, None).await
    }

    /// [`Cluster::changes`], its cut (when it takes one) the waiting readers' shared cut
    /// of `tick` ([`super::ticks`]) when there is a tick, else its own.
    async fn changes_at(
        &self,
        table: &TableName,
        cursor: &ChangeCursor,
        limit: usize,
        holder: Option<&str>,
        tick: Option<Instant>,
    ) -> Result<ChangePage, ChangesError> {
        if let Some(page) = &cursor.snapshot {
            return self
                .snapshot_page(table, Some((page, cursor)), limit, holder)
                .await;
        }
        let limit = limit.max(1);
        let shards = self.shards();
        // When the cut was begun at the latest: a tick's shared cut was begun at or
        // after its tick.
        let begun = match tick {
            Some(tick) => {
                let since = Instant::now().saturating_duration_since(tick);
                Utc::now() - chrono::Duration::from_std(since).unwrap_or_default()
            }
            None => Utc::now(),
        };
        let (upto, last) = match &cursor.within {
            Some(within) => (within.upto.clone(), Some(within.last)),
            None => {
                let ids: Vec<ShardId> = shards.iter().map(|s| s.id).collect();
                let cut = match tick {
                    Some(tick) => {
                        let numbers: Vec<u32> = ids.iter().map(|id| id.0).collect();
                        let take = async {
                            self.change_streams().cut_taken();
                            self.take_cut(&ids).await
                        };
                        self.change_ticks.cut_since(tick, &numbers, take).await?
                    }
                    None => {
                        self.change_streams().cut_taken();
                        self.take_cut(&ids).await?
                    }
                };
                let upto: BTreeMap<u32, String> = cut
                    .shards
                    .into_iter()
                    .map(|s| (s.shard, s.snapshot))
                    .collect();
                (upto, None)
            }
        };
        // Each shard still to read, with the version its rows start after.
        let reads = shards.iter().filter_map(|shard| {
            let id = shard.id.0;
            let snapshot = upto.get(&id)?.clone();
            let after = match last {
                Some((done, _)) if done > id => return None,
                Some((done, version)) if done == id => Some(version),
                _ => None,
            };
            let sent = cursor.sent.get(&id).cloned();
            // The same snapshot sees the same transactions: nothing new on this shard.
            if after.is_none() && sent.as_deref() == Some(snapshot.as_str()) {
                return None;
            }
            let statement =
                changes_page(table.as_str(), sent.as_deref(), &snapshot, after, limit + 1);
            let gone = sent.as_deref().map(changes_gone);
            let table = table.as_str().to_owned();
            Some(async move {
                let read = shard
                    .primary
                    .run(async |conn| {
                        let mut statements: Vec<&str> = gone.iter().map(String::as_str).collect();
                        statements.push(&statement);
                        let answers = conn.query_text("changes", &statements).await?;
                        read_shard(shard.id, &table, gone.is_some(), answers)
                    })
                    .await?;
                match read {
                    ShardRead::Gone { horizon } => Err(ChangesError::Gone {
                        shard: shard.id,
                        horizon,
                    }),
                    ShardRead::Changes(changes) => Ok(changes),
                }
            })
        });
        let mut changes = Vec::new();
        for shard in join_all(reads).await {
            changes.extend(shard?);
        }
        let more = changes.len() > limit;
        changes.truncate(limit);
        let next = match (more, changes.last()) {
            (true, Some(last)) => ChangeCursor {
                sent: cursor.sent.clone(),
                within: Some(Within {
                    upto: upto.clone(),
                    last: (last.shard, last.version),
                }),
                snapshot: None,
            },
            _ => {
                let mut sent = cursor.sent.clone();
                sent.extend(upto.clone());
                ChangeCursor {
                    sent,
                    within: None,
                    snapshot: None,
                }
            }
        };
        // Resolved: the delta ended here, and its cut was begun by this page.
        let resolved = (!more && cursor.within.is_none()).then_some(begun);
        // Each change's own cursor: the rest of the delta after it, or, for the last of
        // a delta sent whole, the cursor after the cut.
        let count = changes.len();
        for (i, change) in changes.iter_mut().enumerate() {
            change.cursor = match (i + 1 == count, more) {
                (true, false) => next.encode(),
                _ => ChangeCursor {
                    sent: cursor.sent.clone(),
                    within: Some(Within {
                        upto: upto.clone(),
                        last: (change.shard, change.version),
                    }),
                    snapshot: None,
                }
                .encode(),
            };
        }
        Ok(ChangePage {
            changes,
            next,
            resolved,
        })
    }

    /// An empty page whose `next` starts after every change committed now (at a new
    /// cut): a stream that follows only what comes (`from=now`). Not resolved: the
    /// changes before the cut were skipped, not sent.
    pub async fn changes_from_now(&self) -> Result<ChangePage, ChangesError> {
        let ids: Vec<ShardId> = self.shards().iter().map(|s| s.id).collect();
        self.change_streams().cut_taken();
        let cut = self.take_cut(&ids).await?;
        Ok(ChangePage {
            changes: Vec::new(),
            next: ChangeCursor {
                sent: cut
                    .shards
                    .into_iter()
                    .map(|s| (s.shard, s.snapshot))
                    .collect(),
                within: None,
                snapshot: None,
            },
            resolved: None,
        })
    }

    /// [`Cluster::changes`], waiting up to `wait` for a change when there is none yet:
    /// a look at each tick of the waiting readers' clock, at the tick's shared cut
    /// ([`super::ticks`]), the cursor moving on with each.
    pub async fn changes_waiting(
        &self,
        table: &TableName,
        cursor: &ChangeCursor,
        limit: usize,
        wait: Duration,
        holder: Option<&str>,
    ) -> Result<ChangePage, ChangesError> {
        let until = Instant::now() + wait;
        let mut page = self.changes(table, cursor, limit, holder).await?;
        loop {
            let tick = self.change_ticks.next_tick(Instant::now());
            if !page.changes.is_empty() || tick > until {
                return Ok(page);
            }
            tokio::time::sleep_until(tick).await;
            page = self
                .changes_at(table, &page.next, limit, holder, Some(tick))
                .await?;
        }
    }

    /// [`Cluster::changes_waiting`] for a reader that is caught up (its last page ended
    /// its delta and was not full): the first look, too, is at the next tick's shared
    /// cut. A stream that follows a busy table then takes at most one cut per tick, shared
    /// with every other reader of the gateway, instead of one per page as fast as pages
    /// go; its changes arrive up to one tick later.
    pub async fn changes_following(
        &self,
        table: &TableName,
        cursor: &ChangeCursor,
        limit: usize,
        wait: Duration,
        holder: Option<&str>,
    ) -> Result<ChangePage, ChangesError> {
        if cursor.within.is_some() || cursor.snapshot.is_some() {
            return self
                .changes_waiting(table, cursor, limit, wait, holder)
                .await;
        }
        let until = Instant::now() + wait;
        let mut next = cursor.clone();
        loop {
            let tick = self.change_ticks.next_tick(Instant::now());
            tokio::time::sleep_until(tick).await;
            let page = self
                .changes_at(table, &next, limit, holder, Some(tick))
                .await?;
            if !page.changes.is_empty() || self.change_ticks.next_tick(tick) > until {
                return Ok(page);
            }
            next = page.next;
        }
    }
}

/// What a shard's log answered.
enum ShardRead {
    /// The cursor's position there is older than the retention horizon.
    Gone {
        horizon: String,
    },
    Changes(Vec<Change>),
}

/// A shard's answers: the retention check (when the cursor had a position there), then
/// its rows.
fn read_shard(
    shard: ShardId,
    table: &str,
    checked: bool,
    mut answers: Vec<Vec<Vec<Option<String>>>>,
) -> Result<ShardRead, WireError> {
    let protocol = |what: &str| WireError::Protocol(format!("the change log answered {what}"));
    let rows = answers.pop().ok_or_else(|| protocol("nothing"))?;
    if checked {
        let check = answers
            .pop()
            .ok_or_else(|| protocol("no retention check"))?;
        let row = check
            .first()
            .ok_or_else(|| protocol("no retention horizon"))?;
        if row.first().and_then(|v| v.as_deref()) == Some("t") {
            let horizon = row.get(1).cloned().flatten().unwrap_or_default();
            return Ok(ShardRead::Gone { horizon });
        }
    }
    let changes = rows
        .into_iter()
        .map(|row| {
            let text = |i: usize| row.get(i).cloned().flatten();
            let version = text(0)
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| protocol("a change without a version"))?;
            let deleted = text(3).as_deref() == Some("t");
            let data = match text(4) {
                None => None,
                Some(json) => Some(
                    RawValue::from_string(json)
                        .map_err(|_| protocol("a document that is not JSON"))?,
                ),
            };
            Ok(Change {
                table: table.to_owned(),
                shard_key: text(1).ok_or_else(|| protocol("a change without a shard key"))?,
                id: text(2).ok_or_else(|| protocol("a change without an id"))?,
                version,
                operation: match deleted {
                    true => Operation::Delete,
                    false => Operation::Upsert,
                },
                data,
                time: text(5).unwrap_or_default(),
                transaction: text(6),
                shard: shard.0,
                cursor: String::new(),
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok(ShardRead::Changes(changes))
}
