//! `shard-admin index create | list | drop`: indexes for queries on every shard's
//! primary, from the command line, through the same library calls as the gateway's
//! `/api/indexes` (`control_plane::indexes`). `create` and `drop` record the change,
//! then run the reconcile to its end here (builds take as long as they take; writes go
//! on); a gateway's background reconcile would finish it too if this is stopped.
//! Arguments are checked before anything is recorded: a refused command changed
//! nothing and says why.

use crate::audit::{Judged, Named, Outcome};
use control_plane::indexes::{self, IndexError, IndexView};
use shard_manager::config::ClusterSettings;
use shard_manager::store::query_index::{is_index_name, IndexSpec};

/// The `index` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum IndexCommand {
    /// Build an index on FIELDS (dotted paths, comma separated, 1 to 4) of TABLE on
    /// every primary, and wait until each shard's build ends.
    Create {
        #[arg(long)]
        table: String,
        #[arg(long)]
        fields: String,
    },
    /// Every index and its state on each shard.
    List,
    /// Drop an index (by the name `list` shows) from every primary, and wait.
    Drop { name: String },
}

impl IndexCommand {
    /// The audit line of a change; None for `list`.
    pub fn audited(&self) -> Option<(&'static str, Named)> {
        match self {
            Self::Create { table, fields } => Some((
                "index create",
                Named {
                    tables: Some(table.clone()),
                    options: Some(format!("--fields {fields}")),
                    ..Named::default()
                },
            )),
            Self::Drop { name } => Some((
                "index drop",
                Named {
                    options: Some(name.clone()),
                    ..Named::default()
                },
            )),
            Self::List => None,
        }
    }
}

/// Why `index` failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexCommandError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl Judged for IndexCommandError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Invalid(_) => Outcome::Refused,
            Self::Index(e) => match e {
                IndexError::Exists { .. }
                | IndexError::TooMany { .. }
                | IndexError::Dropping(_)
                | IndexError::NoSuchIndex(_) => Outcome::Refused,
                IndexError::Map(e) => e.outcome(),
                IndexError::Shard { .. } | IndexError::Query(_) => Outcome::Failed,
            },
        }
    }
}

/// Runs one `index` subcommand; what to print.
pub fn run(settings: &ClusterSettings, command: IndexCommand) -> Result<String, IndexCommandError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| IndexCommandError::Invalid(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        match command {
            IndexCommand::Create { table, fields } => {
                if !settings.tables.allowed.contains(&table) {
                    return Err(IndexCommandError::Invalid(format!(
                        "unknown table {table:?}; allowed tables: {}",
                        settings.tables.allowed.join(", ")
                    )));
                }
                let fields: Vec<String> = fields
                    .split(',')
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect();
                let spec = IndexSpec::parse(&table, &fields)
                    .map_err(|e| IndexCommandError::Invalid(e.to_string()))?;
                let name = indexes::create(settings, &spec).await?;
                indexes::reconcile(settings).await?;
                Ok(show(&indexes::list(settings, Some(&name)).await?))
            }
            IndexCommand::List => Ok(show(&indexes::list(settings, None).await?)),
            IndexCommand::Drop { name } => {
                if !is_index_name(&name) {
                    return Err(IndexError::NoSuchIndex(name).into());
                }
                indexes::drop_index(settings, &name).await?;
                indexes::reconcile(settings).await?;
                Ok(format!("{name}: dropped from every primary\n"))
            }
        }
    })
}

/// One line per index, then one per shard.
fn show(views: &[IndexView]) -> String {
    let mut out = String::new();
    for v in views {
        out += &format!(
            "{} on {} ({}): {}\n",
            v.name,
            v.table,
            v.fields.join(", "),
            v.state
        );
        for s in &v.shards {
            out += &format!("  shard-{}: {}", s.shard, s.state);
            if let Some(e) = &s.error {
                out += &format!(" ({e})");
            }
            out.push('\n');
        }
    }
    if views.is_empty() {
        out += "no indexes\n";
    }
    out
}
