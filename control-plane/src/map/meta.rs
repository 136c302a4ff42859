//! Reading and writing the map in the metadata database (tokio-postgres: the follower
//! needs LISTEN/NOTIFY, which the pooled diesel path does not offer).

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client};

use super::MapError;
use crate::postgres::connect as connect_postgres;
use shard_manager::config::{Balance, ClusterSettings, ShardFollows};
use shard_manager::live_map::shard_map::{ShardEntry, ShardMap};
use shard_manager::routing::{MapVersion, RoutingSettings, ShardId};
use shard_manager::servers::connection_url;
use shard_manager::store::identity::Identity;

/// The channel a map change is announced on (payload: the new version).
pub const CHANNEL: &str = "shardgate_map";

/// A connection to the metadata database, and the notifications it receives.
pub struct MetaConn {
    pub client: Client,
    pub notifications: mpsc::UnboundedReceiver<String>,
    /// The task that drives the connection: aborting it closes the socket at once,
    /// where dropping the client closes it only once every reply sent for is read.
    pub driver: tokio::task::AbortHandle,
}

/// Connects with `[database]`'s credentials to `[metadata]`'s server; the connection
/// is driven by a task of its own, which forwards notifications.
pub async fn connect(settings: &ClusterSettings) -> Result<MetaConn, MapError> {
    let mut db = settings.database.clone();
    db.dbname = settings.metadata.dbname.clone();
    let url = connection_url(&db, &settings.metadata.address);
    let limit = settings.database.connect_timeout() + std::time::Duration::from_millis(500);
    let connecting = connect_postgres(&url, &db);
    let (client, mut connection) = tokio::time::timeout(limit, connecting)
        .await
        .map_err(|_| MapError::Unreachable {
            address: settings.metadata.address.clone(),
            reason: format!("no answer within {} ms", limit.as_millis()),
        })?
        .map_err(|reason| MapError::Unreachable {
            address: settings.metadata.address.clone(),
            reason,
        })?;
    let (tx, notifications) = mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let driver = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(n.payload().to_owned());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "metadata connection ended");
                    break;
                }
            }
        }
    });
    Ok(MetaConn {
        client,
        notifications,
        driver: driver.abort_handle(),
    })
}

/// The current map version, or None before `init`.
pub async fn version(client: &Client) -> Result<Option<MapVersion>, MapError> {
    let row = client
        .query_opt("SELECT version FROM map_state", &[])
        .await
        .map_err(MapError::from_query)?;
    Ok(row.map(|r| MapVersion(r.get::<_, i64>(0) as u64)))
}

/// The whole map, read in one snapshot; None before `init`.
pub async fn load(client: &mut Client) -> Result<Option<ShardMap>, MapError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let Some(state) = tx
        .query_opt("SELECT version, routing::text, tables FROM map_state", &[])
        .await
        .map_err(MapError::from_query)?
    else {
        return Ok(None);
    };
    let version = MapVersion(state.get::<_, i64>(0) as u64);
    let routing: String = state.get(1);
    let tables: Vec<String> = state.get(2);
    let routing: RoutingSettings = serde_json::from_str(&routing)
        .map_err(|e| MapError::Corrupt(format!("map_state.routing: {e}")))?;
    let shards = tx
        .query(
            // `retired`, `term`, `follow` and the identity read so that a database
            // without the migrations `retired_shards`, `shard_terms`, `shard_follow` and
            // `shard_identity` still loads.
            "SELECT id, primary_addr, replicas, balance, read_primary,
                    coalesce((to_jsonb(s) ->> 'retired')::boolean, false),
                    coalesce((to_jsonb(s) ->> 'term')::bigint, 1),
                    coalesce(to_jsonb(s) ->> 'follow', 'servers'),
                    (to_jsonb(s) ->> 'timeline')::int4,
                    to_jsonb(s) ->> 'system_identifier',
                    to_jsonb(s) ->> 'node'
               FROM map_shards s ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let balance: String = r.get(3);
            let follow: String = r.get(7);
            let id = ShardId(r.get::<_, i32>(0) as u32);
            Ok(ShardEntry {
                id,
                primary: r.get(1),
                replicas: r.get(2),
                balance: match balance.as_str() {
                    "least_outstanding" => Balance::LeastOutstanding,
                    _ => Balance::RoundRobin,
                },
                read_primary: r.get(4),
                follow: ShardFollows::parse(&follow).ok_or_else(|| {
                    MapError::Corrupt(format!("map_shards.follow of {id} is {follow:?}"))
                })?,
                retired: r.get(5),
                term: r.get::<_, i64>(6).max(1) as u64,
                identity: r.get::<_, Option<i32>>(8).map(|timeline| Identity {
                    timeline: timeline as u32,
                    system_identifier: r.get(9),
                    node: r.get(10),
                    shard: Some(id.0),
                }),
            })
        })
        .collect::<Result<Vec<_>, MapError>>()?;
    for (i, s) in shards.iter().enumerate() {
        if s.id.0 as usize != i {
            return Err(MapError::Corrupt(format!(
                "map_shards ids are not 0..{}: {} found at position {i}",
                shards.len(),
                s.id
            )));
        }
    }
    let rows = tx
        .query("SELECT slot, shard FROM map_slots ORDER BY slot", &[])
        .await?;
    let mut owners = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let (slot, shard): (i32, i32) = (r.get(0), r.get(1));
        if slot as usize != i || shard as usize >= shards.len() {
            return Err(MapError::Corrupt(format!(
                "map_slots row {i} is slot {slot} of shard {shard}"
            )));
        }
        owners.push(ShardId(shard as u32));
    }
    tx.commit().await?;
    Ok(Some(ShardMap {
        version,
        routing,
        tables,
        shards,
        owners,
    }))
}

/// Who runs an admin command, for the history: OS user and host.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", host_name())
}

/// The name of this process's user in /etc/passwd (no USER in a service's environment).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// This machine's name (for the history and the gateway list).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Stores `map` as the first version. Returns false (and changes nothing) when the
/// database already holds a map.
pub async fn seed(client: &mut Client, map: &ShardMap, actor: &str) -> Result<bool, MapError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::schema::ADMIN_LOCK],
    )
    .await?;
    if tx
        .query_opt("SELECT 1 FROM map_state", &[])
        .await?
        .is_some()
    {
        // A map stored before tables were kept with it: record them once.
        tx.execute(
            "UPDATE map_state SET tables = $1 WHERE cardinality(tables) = 0",
            &[&map.tables],
        )
        .await?;
        tx.commit().await?;
        return Ok(false);
    }
    let version = map.version.0 as i64;
    let routing =
        serde_json::to_string(&map.routing).map_err(|e| MapError::Corrupt(e.to_string()))?;
    tx.execute(
        "INSERT INTO map_state (version, routing, tables) VALUES ($1, $2::text::jsonb, $3)",
        &[&version, &routing, &map.tables],
    )
    .await?;
    for s in &map.shards {
        insert_shard(&tx, s, map.version).await?;
    }
    let slots: Vec<i32> = (0..map.owners.len() as i32).collect();
    let owners: Vec<i32> = map.owners.iter().map(|s| s.0 as i32).collect();
    tx.execute(
        "INSERT INTO map_slots (slot, shard, since) SELECT unnest($1::int[]), unnest($2::int[]), $3",
        &[&slots, &owners, &version],
    )
    .await?;
    let summary = format!(
        "seeded from the configuration: {} shards, {} slots, strategy {}",
        map.shards.len(),
        map.slot_count(),
        map.routing.strategy
    );
    history(
        &tx,
        map.version,
        actor,
        "init",
        &summary,
        serde_json::json!({}),
    )
    .await?;
    tx.execute(&format!("NOTIFY {CHANNEL}, '{version}'"), &[])
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// One shard's row in `map_shards`, present since `version`.
pub(super) async fn insert_shard(
    tx: &tokio_postgres::Transaction<'_>,
    s: &ShardEntry,
    version: MapVersion,
) -> Result<(), MapError> {
    let balance = match s.balance {
        Balance::RoundRobin => "round_robin",
        Balance::LeastOutstanding => "least_outstanding",
    };
    tx.execute(
        "INSERT INTO map_shards (id, primary_addr, replicas, balance, read_primary, since, retired,
                                 follow)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &(s.id.0 as i32),
            &s.primary,
            &s.replicas,
            &balance,
            &s.read_primary,
            &(version.0 as i64),
            &s.retired,
            &s.follow.as_str(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn history(
    tx: &tokio_postgres::Transaction<'_>,
    version: MapVersion,
    actor: &str,
    action: &str,
    summary: &str,
    detail: serde_json::Value,
) -> Result<(), MapError> {
    tx.execute(
        "INSERT INTO map_history (version, actor, action, summary, detail)
         VALUES ($1, $2, $3, $4, $5::text::jsonb)",
        &[
            &(version.0 as i64),
            &actor,
            &action,
            &summary,
            &detail.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// Stores `next` (whose version is one past `expected`) with its history line: the
/// slots in `moved` change owner. Refused when the stored map is no longer `expected`
/// (another command changed it meanwhile).
pub async fn commit(
    client: &mut Client,
    expected: MapVersion,
    next: &ShardMap,
    moved: &[(u32, ShardId)],
    line: HistoryEntry<'_>,
) -> Result<(), MapError> {
    let tx = begin_at(client, expected).await?;
    let version = next.version.0 as i64;
    let slots: Vec<i32> = moved.iter().map(|(s, _)| *s as i32).collect();
    let owners: Vec<i32> = moved.iter().map(|(_, o)| o.0 as i32).collect();
    tx.execute(
        "UPDATE map_slots m SET shard = c.shard, since = $3
           FROM (SELECT unnest($1::int[]) AS slot, unnest($2::int[]) AS shard) c
          WHERE m.slot = c.slot",
        &[&slots, &owners, &version],
    )
    .await?;
    finish(tx, next.version, line).await
}

/// (actor, action, summary, detail) of a map change's history line.
pub type HistoryEntry<'a> = (&'a str, &'a str, &'a str, serde_json::Value);

/// A transaction holding the stored map, refused unless it is still at `expected`
/// (another command changed it meanwhile).
pub(crate) async fn begin_at(
    client: &mut Client,
    expected: MapVersion,
) -> Result<tokio_postgres::Transaction<'_>, MapError> {
    let tx = client.transaction().await?;
    let stored: i64 = tx
        .query_one("SELECT version FROM map_state FOR UPDATE", &[])
        .await?
        .get(0);
    if stored as u64 != expected.0 {
        return Err(MapError::Changed {
            expected,
            found: MapVersion(stored as u64),
        });
    }
    Ok(tx)
}

/// Moves the stored map to `version` with its history line, announces it to the
/// gateways (NOTIFY) and commits.
pub(crate) async fn finish(
    tx: tokio_postgres::Transaction<'_>,
    version: MapVersion,
    (actor, action, summary, detail): HistoryEntry<'_>,
) -> Result<(), MapError> {
    let v = version.0 as i64;
    tx.execute(
        "UPDATE map_state SET version = $1, updated_at = now()",
        &[&v],
    )
    .await?;
    history(&tx, version, actor, action, summary, detail).await?;
    tx.execute(&format!("NOTIFY {CHANNEL}, '{v}'"), &[]).await?;
    tx.commit().await?;
    Ok(())
}

/// One line of the map's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    /// The version this line made, or, for a note, the version it saw.
    pub version: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub summary: String,
    /// A note (the automatic balancer's decision) changed no map; a change did.
    pub note: bool,
}

/// The newest `limit` lines, newest first: the map's changes and the notes between them.
/// A database without the migration `balancer_notes` (no command that writes has run
/// since the upgrade)
/// has changes only, read in version order.
pub async fn history_lines(client: &Client, limit: i64) -> Result<Vec<HistoryLine>, MapError> {
    const COLUMNS: &str = "version, to_char(at AT TIME ZONE 'UTC', \
        'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), actor, action, summary";
    let with_notes = format!("SELECT {COLUMNS}, note FROM map_history ORDER BY seq DESC LIMIT $1");
    let rows = match client.query(&with_notes, &[&limit]).await {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN) => {
            let changes =
                format!("SELECT {COLUMNS}, false FROM map_history ORDER BY version DESC LIMIT $1");
            client.query(&changes, &[&limit]).await
        }
        other => other,
    }
    .map_err(MapError::from_query)?;
    Ok(rows
        .iter()
        .map(|r| HistoryLine {
            version: r.get::<_, i64>(0) as u64,
            at: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            summary: r.get(4),
            note: r.get(5),
        })
        .collect())
}

/// Writes a note in the map's history: a line that changes no map (the automatic
/// balancer's decisions), under the version stored now. The caller has applied the
/// metadata migrations (the note needs `balancer_notes`).
pub async fn note(
    client: &Client,
    actor: &str,
    action: &str,
    summary: &str,
    detail: serde_json::Value,
) -> Result<(), MapError> {
    client
        .execute(
            "INSERT INTO map_history (version, actor, action, summary, detail, note)
             SELECT version, $1, $2, $3, $4::text::jsonb, true FROM map_state",
            &[&actor, &action, &summary, &detail.to_string()],
        )
        .await
        .map_err(MapError::from_query)?;
    Ok(())
}
