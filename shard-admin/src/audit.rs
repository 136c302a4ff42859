//! The audit line of an admin command: every `shard-admin` command that changes
//! something (the map, the moves, the keys, a shard's schema or rows) leaves exactly one
//! `tracing` event, target `audit`, once it is over: who (the OS user and host), what
//! (`action`), when (`at`, RFC 3339 UTC, besides the line's own timestamp), the outcome
//! (`done`; `refused`, nothing changed; `failed`, the cluster or the metadata database
//! let it down) with the error's text, and what the command named ([`Named`]).
//! Read-only commands leave none. `RUST_LOG=warn,audit=info` keeps only these lines.
//!
//! No secret reaches the line: every text in it goes through a [`Redactor`] (passwords
//! in URLs and `password=` pairs, API key secrets, the configured passwords; a secret
//! found in one field is hidden in all, e.g. in an error quoting a typed password).

use chrono::{SecondsFormat, Utc};
use secrecy::ExposeSecret;

use crate::{AdminError, CommandError};
use control_plane::backup::BackupError;
use control_plane::failover::switchover::SwitchoverError;
use control_plane::import::ImportError;
use control_plane::keys::KeyError;
use control_plane::map::{meta, MapError};
use control_plane::moves::MoveError;
use shard_manager::config::{ClusterSettings, ConfigError};
use shard_manager::redact::{url_password, Redactor};

/// Longest text a named field shows (characters).
const MAX_FIELD: usize = 200;
/// Longest error text shown (characters).
const MAX_ERROR: usize = 1000;

/// What an admin command acted on, as typed (or as found, for a key that was changed).
/// A field left `None` is not written.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// An API key's name (`keys ...`).
    pub key: Option<String>,
    /// That key's scopes, tables and limits, once known (a key that was changed).
    pub scopes: Option<String>,
    pub tables: Option<String>,
    pub limits: Option<String>,
    /// The shard acted on (`remove-shard`), e.g. `shard-2`.
    pub shard: Option<String>,
    /// The shards slots leave and join (`move-slots`).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Slots as typed: `0-15,40` (`move-slots`), `0-99=1 512=2` (`map assign-slots`).
    pub slots: Option<String>,
    /// A recorded move (`moves resume | abort | reverse`).
    pub move_id: Option<i64>,
    /// Servers, host:port (`add-shard`'s primary and replicas).
    pub servers: Option<String>,
    /// A database, host:port/name (the metadata database) or a name (the shards').
    pub database: Option<String>,
    /// A logical table (`seed`).
    pub table: Option<String>,
    /// The command's other options as typed, e.g. `--by bytes --tolerance 0.05`.
    pub options: Option<String>,
}

/// What became of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it was asked.
    Done,
    /// It was refused (bad arguments, an unknown shard, key or move, a busy map): it
    /// changed nothing.
    Refused,
    /// A server or the metadata database let it down, possibly half-way.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }

    /// The outcome an error stands for: the first error of the chain this module knows
    /// decides; an unknown one failed.
    pub fn of(error: &anyhow::Error) -> Self {
        error
            .chain()
            .find_map(|e| {
                if let Some(e) = e.downcast_ref::<MoveError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<MapError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<ImportError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<KeyError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<SwitchoverError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<CommandError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<ConfigError>() {
                    Some(e.outcome())
                } else if let Some(e) = e.downcast_ref::<BackupError>() {
                    Some(e.outcome())
                } else {
                    e.downcast_ref::<AdminError>().map(Judged::outcome)
                }
            })
            .unwrap_or(Self::Failed)
    }
}

/// An error that knows whether it refused the command or failed it.
pub trait Judged {
    fn outcome(&self) -> Outcome;
}

impl Judged for MapError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Invalid(_) | Self::Assign(_) | Self::NotInitialised | Self::Changed { .. } => {
                Outcome::Refused
            }
            Self::Unreachable { .. }
            | Self::Corrupt(_)
            | Self::Shard { .. }
            | Self::Migration { .. }
            | Self::Query(_) => Outcome::Failed,
        }
    }
}

impl Judged for MoveError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) | Self::UnknownMove(_) | Self::NoMoves => Outcome::Refused,
            Self::Map(e) => e.outcome(),
            _ => Outcome::Failed,
        }
    }
}

impl Judged for ImportError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) | Self::Unknown(_) => Outcome::Refused,
            Self::Shard(e) => e.outcome(),
            Self::Map(e) => e.outcome(),
            _ => Outcome::Failed,
        }
    }
}

impl Judged for KeyError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Invalid(_) | Self::NoSuchKey(_) | Self::NameTaken(_) => Outcome::Refused,
            Self::Map(e) => e.outcome(),
            _ => Outcome::Failed,
        }
    }
}

impl Judged for SwitchoverError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) => Outcome::Refused,
            Self::Map(e) => e.outcome(),
            _ => Outcome::Failed,
        }
    }
}

impl Judged for CommandError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Usage(_) => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// A backup or restore refused before it did anything (another job running, a point
/// that does not exist, pgBackRest missing or not set up) against one a server, the
/// repository or pgbackrest let down.
impl Judged for BackupError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_)
            | Self::RestoreRefused(_)
            | Self::NotInstalled { .. }
            | Self::NoConfig { .. }
            | Self::RepoMissing { .. }
            | Self::RepoNotWritable { .. }
            | Self::StanzaMissing { .. } => Outcome::Refused,
            Self::Map(e) => e.outcome(),
            Self::RestoreStep { .. }
            | Self::RepoFull { .. }
            | Self::Pgbackrest { .. }
            | Self::Server { .. }
            | Self::NotArchived { .. } => Outcome::Failed,
        }
    }
}

/// A configuration that does not load or does not describe a working cluster (an
/// unknown key among them) refuses every command before it starts.
impl Judged for ConfigError {
    fn outcome(&self) -> Outcome {
        Outcome::Refused
    }
}

impl Judged for AdminError {
    fn outcome(&self) -> Outcome {
        Outcome::Failed
    }
}

/// One admin command's audit line, prepared before it runs and written once it is over.
#[derive(Debug)]
pub struct Audit {
    who: String,
    action: String,
    named: Named,
    /// The configured secrets, hidden wherever they would show.
    secrets: Vec<String>,
}

impl Audit {
    /// The line for `action` (e.g. `"move-slots"`) naming `named`, run by this process's
    /// user.
    pub fn new(settings: &ClusterSettings, action: impl Into<String>, named: Named) -> Self {
        let mut secrets = vec![settings.database.password.expose_secret().to_owned()];
        secrets.extend(url_password(&settings.cache.url));
        let f = &settings.failover;
        secrets.extend(f.ha_monitor.as_deref().and_then(url_password));
        secrets.extend(f.promoting_monitor().and_then(url_password));
        secrets.extend(
            f.admin_password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
        );
        secrets.retain(|s| !s.is_empty());
        Self {
            who: meta::actor(),
            action: action.into(),
            named,
            secrets,
        }
    }

    /// Who runs the command (the OS user and host), as the line names them.
    pub fn who(&self) -> &str {
        &self.who
    }

    /// Writes the line of a command that did what it was asked.
    pub fn done(self) {
        self.write(Outcome::Done, None);
    }

    /// Writes the line of a command that was refused or failed, with the error's text.
    pub fn refused_or_failed(self, outcome: Outcome, error: &str) {
        self.write(outcome, Some(error));
    }

    /// Replaces what the line names (e.g. by the key a command changed, as stored).
    pub fn naming(mut self, named: Named) -> Self {
        self.named = named;
        self
    }

    fn write(self, outcome: Outcome, error: Option<&str>) {
        let n = &self.named;
        let texts = [
            &n.key,
            &n.scopes,
            &n.tables,
            &n.limits,
            &n.shard,
            &n.from,
            &n.to,
            &n.slots,
            &n.servers,
            &n.database,
            &n.table,
            &n.options,
        ];
        // A secret typed anywhere (an address with a password) is hidden everywhere.
        let mut redactor = Redactor::knowing(self.secrets.iter().cloned());
        for text in texts
            .iter()
            .copied()
            .flatten()
            .map(String::as_str)
            .chain(error)
        {
            redactor.learn(text);
        }
        let shown = |text: Option<&str>, max: usize| {
            text.map(|t| redactor.hide(t).chars().take(max).collect::<String>())
        };
        let field = |text: &Option<String>| shown(text.as_deref(), MAX_FIELD);
        let (key, scopes, tables, limits) = (
            field(&n.key),
            field(&n.scopes),
            field(&n.tables),
            field(&n.limits),
        );
        let (shard, from, to, slots) = (
            field(&n.shard),
            field(&n.from),
            field(&n.to),
            field(&n.slots),
        );
        let (servers, database, table, options) = (
            field(&n.servers),
            field(&n.database),
            field(&n.table),
            field(&n.options),
        );
        let error = shown(error, MAX_ERROR);
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: "audit",
                    at = %now(),
                    who = self.who.as_str(),
                    action = self.action.as_str(),
                    outcome = outcome.as_str(),
                    key = key.as_deref(),
                    scopes = scopes.as_deref(),
                    tables = tables.as_deref(),
                    limits = limits.as_deref(),
                    shard = shard.as_deref(),
                    from = from.as_deref(),
                    to = to.as_deref(),
                    slots = slots.as_deref(),
                    move_id = n.move_id,
                    servers = servers.as_deref(),
                    database = database.as_deref(),
                    table = table.as_deref(),
                    options = options.as_deref(),
                    error = error.as_deref(),
                    "admin command"
                )
            };
        }
        match outcome {
            Outcome::Done => line!(info),
            Outcome::Refused | Outcome::Failed => line!(warn),
        }
    }
}

/// The time for an audit line: RFC 3339, UTC, milliseconds.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_judged_refused_or_failed() {
        let refused = anyhow::Error::from(MoveError::Refused("no".into()));
        assert_eq!(Outcome::of(&refused), Outcome::Refused);
        let unknown_shard = anyhow::Error::from(MoveError::Map(MapError::Invalid("x".into())));
        assert_eq!(Outcome::of(&unknown_shard), Outcome::Refused);
        let down = anyhow::Error::from(MapError::Unreachable {
            address: "a".into(),
            reason: "r".into(),
        });
        assert_eq!(Outcome::of(&down), Outcome::Failed);
        let usage = anyhow::Error::from(CommandError::Usage("bad".into()));
        assert_eq!(Outcome::of(&usage), Outcome::Refused);
        assert_eq!(Outcome::of(&anyhow::anyhow!("what")), Outcome::Failed);
        let config = anyhow::Error::from(ConfigError::Unknown("key".into()));
        assert_eq!(
            Outcome::of(&config.context("loading configuration")),
            Outcome::Refused
        );
        let busy = anyhow::Error::from(BackupError::Refused("a move".into()));
        assert_eq!(Outcome::of(&busy), Outcome::Refused);
        let down = anyhow::Error::from(BackupError::server("127.0.0.1:1", "refused"));
        assert_eq!(Outcome::of(&down), Outcome::Failed);
        assert!(now().ends_with('Z') && now().len() == "2026-01-01T00:00:00.000Z".len());
    }
}
