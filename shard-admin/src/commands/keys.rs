//! `shard-admin keys ...`: API keys in the metadata database, from the command line:
//! create, list, revoke, rotate, `limit` (a key's own rate, burst and concurrency), and
//! `adopt` (store a key an operator made, read from an environment variable: how the
//! Helm chart's migrate Job makes the first key from a Kubernetes Secret).
//!
//! A new secret is printed once, alone on standard output (so `KEY=$(shard-admin keys
//! create ...)` works); what was done goes to standard error. Arguments are checked
//! before anything is stored: a refused command changed nothing and says why in one
//! line. Every command, refused or not, leaves one [audit](crate::audit) line: who (the
//! OS user and host), what, when (`at`), the outcome, which key.

use crate::audit::{Audit, Judged, Named};
use control_plane::keys::store::Adopted;
use control_plane::keys::{store, KeyError, KeyLimits, KeyName, LimitArgs, NewKey, Scopes, Secret};
use control_plane::map::{change, meta, schema};
use shard_manager::config::ClusterSettings;

/// The `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it, once. Gateways accept it within a second.
    Create {
        /// How people and the audit log call it: 1 to 64 of A-Z a-z 0-9 . _ -
        #[arg(long)]
        name: String,
        /// One or more of read, write, admin, metrics, separated by commas.
        #[arg(long)]
        scopes: String,
        /// Limit the key to these logical tables (comma separated); default: every table.
        #[arg(long)]
        tables: Option<String>,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Store a key its operator made and keeps elsewhere (a Kubernetes Secret): only its
    /// hash is stored. Run again with the same name and key, or with a key since revoked,
    /// it changes nothing; a live key of that name with another secret is refused.
    Adopt {
        /// How people and the audit log call it: 1 to 64 of A-Z a-z 0-9 . _ -
        #[arg(long)]
        name: String,
        /// One or more of read, write, admin, metrics, separated by commas.
        #[arg(long)]
        scopes: String,
        /// Limit the key to these logical tables (comma separated); default: every table.
        #[arg(long)]
        tables: Option<String>,
        /// The environment variable that holds the key (`sg_` and 64 lowercase hex
        /// digits), so it never appears in a command line or a process list.
        #[arg(long)]
        secret_env: String,
    },
    /// Change a live key's own limits (the others stay); gateways apply them within a
    /// second, no restart.
    Limit {
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// List the live keys (never their secrets); with --all, the revoked ones too.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key: gateways refuse it within a second.
    Revoke { name: String },
    /// Replace a key's secret (same name, scopes and tables); the old one is revoked.
    Rotate { name: String },
}

/// A key's own limits as the command line gives them; each is a whole number,
/// `unlimited` (not for a burst) or `default` (the gateways' `[limits]`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitFlags {
    /// Requests per second the key may make, sustained (1 to 1000000, unlimited, default).
    #[arg(long, allow_hyphen_values = true)]
    rate: Option<String>,
    /// Requests the key may send at once above its rate (1 to 1000000, default; the
    /// default with its own rate is one second's worth).
    #[arg(long, allow_hyphen_values = true)]
    burst: Option<String>,
    /// Queries of the key that may run on one shard at once, per gateway (1 to 100000,
    /// unlimited, default).
    #[arg(long, allow_hyphen_values = true)]
    concurrency: Option<String>,
}

impl LimitFlags {
    fn args(self) -> LimitArgs {
        LimitArgs {
            rate: self.rate,
            burst: self.burst,
            concurrency: self.concurrency,
        }
    }
}

/// What a command prints: `out` on standard output, `note` on standard error.
#[derive(Debug, Default)]
pub struct Printed {
    pub out: String,
    pub note: String,
}

/// Runs one `keys` subcommand.
pub fn run(settings: &ClusterSettings, command: KeysCommand) -> Result<Printed, KeyError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KeyError::Invalid(format!("cannot start a runtime: {e}")))?;
    rt.block_on(run_async(settings, command))
}

/// Runs the command and leaves its audit line, whatever the outcome.
async fn run_async(settings: &ClusterSettings, command: KeysCommand) -> Result<Printed, KeyError> {
    let (action, named) = command.what();
    let audit = Audit::new(
        settings,
        action,
        Named {
            key: named,
            ..Named::default()
        },
    );
    let done = execute(settings, command, audit.who()).await;
    match &done {
        Ok((_, Some(key))) => audit.naming(named_key(key)).done(),
        Ok((_, None)) => audit.done(),
        Err(e) => audit.refused_or_failed(e.outcome(), &e.to_string()),
    }
    done.map(|(printed, _)| printed)
}

/// What the audit line names of a key that was changed: as stored, never its secret.
fn named_key(key: &NewKey) -> Named {
    Named {
        key: Some(key.name.as_str().to_owned()),
        scopes: Some(key.scopes.to_string()),
        tables: key.tables.as_ref().map(|t| t.join(",")),
        limits: Some(key.limits.to_string()),
        ..Named::default()
    }
}

impl KeysCommand {
    /// The action's name for the audit line, and the key it names (as typed).
    fn what(&self) -> (&'static str, Option<String>) {
        match self {
            Self::Create { name, .. } => ("keys create", Some(name.clone())),
            Self::Adopt { name, .. } => ("keys adopt", Some(name.clone())),
            Self::List { all: false } => ("keys list", None),
            Self::List { all: true } => ("keys list --all", None),
            Self::Revoke { name } => ("keys revoke", Some(name.clone())),
            Self::Rotate { name } => ("keys rotate", Some(name.clone())),
            Self::Limit { name, .. } => ("keys limit", Some(name.clone())),
        }
    }
}

/// One command: what it prints, and the key it changed (for the audit line).
async fn execute(
    settings: &ClusterSettings,
    command: KeysCommand,
    actor: &str,
) -> Result<(Printed, Option<NewKey>), KeyError> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            tables,
            limits,
        } => {
            let name = KeyName::parse(&name).map_err(KeyError::Invalid)?;
            let scopes = Scopes::parse(&scopes).map_err(KeyError::Invalid)?;
            let limits = limits
                .args()
                .apply(KeyLimits::default())
                .map_err(KeyError::Invalid)?;
            let key = NewKey {
                name,
                scopes,
                tables: match tables {
                    Some(text) => Some(known_tables(settings, &text).await?),
                    None => None,
                },
                limits,
            };
            let secret = store::create(&mut open(settings).await?, &key, actor).await?;
            let printed = Printed {
                out: format!("{}\n", secret.expose()),
                note: format!(
                    "created key {:?} ({}): shown above only this once, store it now; gateways accept it within a second\n",
                    key.name.as_str(),
                    describe(&key)
                ),
            };
            Ok((printed, Some(key)))
        }
        KeysCommand::Adopt {
            name,
            scopes,
            tables,
            secret_env,
        } => {
            let name = KeyName::parse(&name).map_err(KeyError::Invalid)?;
            let scopes = Scopes::parse(&scopes).map_err(KeyError::Invalid)?;
            let text = std::env::var(&secret_env).map_err(|_| {
                KeyError::Invalid(format!(
                    "keys adopt: the environment variable {secret_env} (--secret-env) is not set or not UTF-8"
                ))
            })?;
            let secret = Secret::given(text.trim()).map_err(|why| {
                KeyError::Invalid(format!(
                    "keys adopt: {secret_env} does not hold a key: {why}"
                ))
            })?;
            let key = NewKey {
                name,
                scopes,
                tables: match tables {
                    Some(text) => Some(known_tables(settings, &text).await?),
                    None => None,
                },
                limits: KeyLimits::default(),
            };
            let adopted = store::adopt(&mut open(settings).await?, &key, &secret, actor).await?;
            let name = key.name.as_str();
            let note = match &adopted {
                Adopted::Stored => format!(
                    "adopted key {name:?} ({}) from {secret_env}: only its hash is stored; gateways accept it within a second\n",
                    describe(&key)
                ),
                Adopted::AlreadyThere => {
                    format!("key {name:?} is live already with this secret: nothing changed\n")
                }
                Adopted::Revoked { name, at, by } => format!(
                    "the key in {secret_env} was key {name:?}, revoked at {at} by {by}: a revoked key is not adopted again; nothing changed\n"
                ),
            };
            let printed = Printed {
                out: String::new(),
                note,
            };
            Ok((printed, (adopted == Adopted::Stored).then_some(key)))
        }
        KeysCommand::Limit { name, limits } => {
            let name = KeyName::parse(&name).map_err(KeyError::Invalid)?;
            let args = limits.args();
            if args.is_empty() {
                return Err(KeyError::Invalid(
                    "keys limit: give at least one of --rate, --burst, --concurrency".into(),
                ));
            }
            // Checked before connecting: a bad value changes nothing, whatever the key.
            args.apply(KeyLimits::default())
                .map_err(KeyError::Invalid)?;
            let (before, after) =
                store::set_limits(&mut open(settings).await?, &name, &args).await?;
            let printed = Printed {
                out: String::new(),
                note: format!(
                    "limits of key {:?}: {after} (were {before}); gateways apply them within a second\n",
                    name.as_str()
                ),
            };
            Ok((printed, None))
        }
        KeysCommand::List { all } => {
            let conn = meta::connect(settings).await?;
            let rows = match store::list(&conn.client, all).await {
                Err(KeyError::Query(e))
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
                {
                    Vec::new()
                }
                other => other?,
            };
            let mut out = format!(
                "{:<24} {:<26} {:<20} {:<32} {:<15} {:<21} {:<24} STATUS\n",
                "NAME", "SCOPES", "TABLES", "LIMITS", "HASH", "CREATED (UTC)", "BY"
            );
            for r in &rows {
                let status = match (&r.revoked_at, &r.revoked_by) {
                    (Some(at), by) => format!("revoked {at} by {}", by.as_deref().unwrap_or("?")),
                    (None, _) => "live".into(),
                };
                out += &format!(
                    "{:<24} {:<26} {:<20} {:<32} sha256:{:<8} {:<21} {:<24} {status}\n",
                    r.name,
                    r.scopes,
                    r.tables.as_ref().map_or("all".into(), |t| t.join(",")),
                    r.limits.to_string(),
                    r.fingerprint,
                    r.created_at,
                    r.created_by
                );
            }
            let live = rows.iter().filter(|r| r.revoked_at.is_none()).count();
            out += &format!("{live} live key(s)");
            if live == 0 {
                out += ": gateways serve loopback clients only (protected mode)";
            }
            out += "\n";
            let printed = Printed {
                out,
                note: String::new(),
            };
            Ok((printed, None))
        }
        KeysCommand::Revoke { name } => {
            let name = KeyName::parse(&name).map_err(KeyError::Invalid)?;
            let old = store::revoke(&mut open(settings).await?, &name, actor).await?;
            let printed = Printed {
                out: String::new(),
                note: format!(
                    "revoked key {:?} ({}): gateways refuse it within a second\n",
                    name.as_str(),
                    describe(&old)
                ),
            };
            Ok((printed, Some(old)))
        }
        KeysCommand::Rotate { name } => {
            let name = KeyName::parse(&name).map_err(KeyError::Invalid)?;
            let (key, secret) = store::rotate(&mut open(settings).await?, &name, actor).await?;
            let printed = Printed {
                out: format!("{}\n", secret.expose()),
                note: format!(
                    "rotated key {:?} ({}): the new secret is shown above only this once; the old one is revoked and refused within a second\n",
                    name.as_str(),
                    describe(&key)
                ),
            };
            Ok((printed, Some(key)))
        }
    }
}

/// Connects and applies the metadata migrations (the keys' table is one of them).
async fn open(settings: &ClusterSettings) -> Result<tokio_postgres::Client, KeyError> {
    let mut conn = meta::connect(settings).await?;
    schema::apply(&mut conn.client).await?;
    Ok(conn.client)
}

/// `--tables a,b`, each one a table clients may use: the stored map's tables, or the
/// configuration's when no map is stored yet.
async fn known_tables(settings: &ClusterSettings, text: &str) -> Result<Vec<String>, KeyError> {
    let known = match change::current(settings).await {
        Ok(map) if !map.tables.is_empty() => map.tables,
        _ => settings.tables.allowed.clone(),
    };
    let mut tables: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if !known.iter().any(|k| k == name) {
            let shown: String = name.chars().take(32).collect();
            return Err(KeyError::Invalid(format!(
                "--tables: {shown:?} is not a table clients may use; the tables are {}",
                known.join(", ")
            )));
        }
        if !tables.iter().any(|t| t == name) {
            tables.push(name.to_owned());
        }
    }
    Ok(tables)
}

fn describe(key: &NewKey) -> String {
    let tables = key
        .tables
        .as_ref()
        .map_or("every table".into(), |t| format!("tables {}", t.join(",")));
    format!("scopes {}, {tables}, limits {}", key.scopes, key.limits)
}
