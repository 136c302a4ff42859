//! The scenarios, by name: what `--scenario` accepts and the goose scenario each becomes.
//!
//! | name          | request                                                            |
//! |---------------|--------------------------------------------------------------------|
//! | `write`       | `POST /api/write`: upsert `users/rec_{n}` with a fresh profile      |
//! | `read`        | `GET /api/read?table=users&id=rec_{n}` (eventual: a replica)        |
//! | `read-strong` | the same with `consistency=strong` (the primary)                    |
//! | `read-cached` | the same request as `read`, counting `x-cache` hit/miss/bypass      |
//! | `list`        | `GET /api/read?table=orders&limit=10`: a key's newest orders        |
//! | `bulk-write`  | `POST /api/bulk-write`: `--batch` orders over many keys             |
//! | `fan-out`     | `GET /api/read?table=users&limit=10` without a key: every shard     |
//! | `query`       | `POST /api/query`: one tier's users above a floor, by value, 20 a page |
//! | `mixed`       | 70% `write`, 30% `read`: the ancestor's workload                    |
//! | `ryw`         | write a record, read it back at once, count reads that miss it      |
//! | `live`        | `GET /api/health/live`: no database, the HTTP ceiling               |
//! | `verify`      | write owned records, read each back with its token; judged at the end |
//!
//! Each file holds one family; this one maps names to them. Every request goes through
//! [`crate::http::send`] under a fixed name, so goose aggregates by operation, not by id.

pub mod bulk;
pub mod fanout;
pub mod live;
pub mod mixed;
pub mod query;
pub mod read;
pub mod ryw;
pub mod verify;
pub mod write;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use goose::prelude::{GooseError, Scenario};

use crate::workload::Workload;

/// Wraps `async fn f(&mut GooseUser, &Workload) -> TransactionResult` as a goose
/// transaction named `name` that shares `workload`.
macro_rules! transaction_with {
    ($workload:expr, $name:expr, $func:path) => {{
        let workload = ::std::sync::Arc::clone($workload);
        ::goose::prelude::Transaction::new(::std::sync::Arc::new(move |user| {
            let workload = ::std::sync::Arc::clone(&workload);
            ::std::boxed::Box::pin(async move { $func(user, &workload).await })
        }))
        .set_name($name)
    }};
}
pub(crate) use transaction_with;

/// A scenario `--scenario` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScenarioKind {
    Write,
    Read,
    ReadStrong,
    ReadCached,
    List,
    BulkWrite,
    FanOut,
    Query,
    Mixed,
    Ryw,
    Live,
    Verify,
}

/// What the prefill must write before a scenario can run without 404s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `users/rec_{n}` for every key.
    pub users: bool,
    /// `orders/ord_{n}_{j}` for every key.
    pub orders: bool,
}

impl Needs {
    pub fn any(self) -> bool {
        self.users || self.orders
    }

    pub fn union(self, other: Needs) -> Needs {
        Needs {
            users: self.users || other.users,
            orders: self.orders || other.orders,
        }
    }
}

impl ScenarioKind {
    pub const ALL: [ScenarioKind; 12] = [
        ScenarioKind::Write,
        ScenarioKind::Read,
        ScenarioKind::ReadStrong,
        ScenarioKind::ReadCached,
        ScenarioKind::List,
        ScenarioKind::BulkWrite,
        ScenarioKind::FanOut,
        ScenarioKind::Query,
        ScenarioKind::Mixed,
        ScenarioKind::Ryw,
        ScenarioKind::Live,
        ScenarioKind::Verify,
    ];

    /// The name on the command line and in goose's reports.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Write => "write",
            ScenarioKind::Read => "read",
            ScenarioKind::ReadStrong => "read-strong",
            ScenarioKind::ReadCached => "read-cached",
            ScenarioKind::List => "list",
            ScenarioKind::BulkWrite => "bulk-write",
            ScenarioKind::FanOut => "fan-out",
            ScenarioKind::Query => "query",
            ScenarioKind::Mixed => "mixed",
            ScenarioKind::Ryw => "ryw",
            ScenarioKind::Live => "live",
            ScenarioKind::Verify => "verify",
        }
    }

    /// Records the prefill must provide.
    pub fn needs(self) -> Needs {
        match self {
            ScenarioKind::Read
            | ScenarioKind::ReadStrong
            | ScenarioKind::ReadCached
            | ScenarioKind::Mixed
            | ScenarioKind::Query
            | ScenarioKind::Ryw => Needs {
                users: true,
                orders: false,
            },
            ScenarioKind::List => Needs {
                users: false,
                orders: true,
            },
            ScenarioKind::Write
            | ScenarioKind::BulkWrite
            | ScenarioKind::FanOut
            | ScenarioKind::Live
            | ScenarioKind::Verify => Needs::default(),
        }
    }

    /// The goose scenario, started for `weight` users out of every total-weight users.
    pub fn build(self, weight: usize, workload: &Arc<Workload>) -> Result<Scenario, GooseError> {
        let scenario = Scenario::new(self.name()).set_weight(weight)?;
        Ok(match self {
            ScenarioKind::Write => {
                scenario.register_transaction(transaction_with!(workload, "write", write::write))
            }
            ScenarioKind::Read => {
                scenario.register_transaction(transaction_with!(workload, "read", read::read))
            }
            ScenarioKind::ReadStrong => scenario.register_transaction(transaction_with!(
                workload,
                "read-strong",
                read::read_strong
            )),
            ScenarioKind::ReadCached => scenario.register_transaction(transaction_with!(
                workload,
                "read-cached",
                read::read_cached
            )),
            ScenarioKind::List => {
                scenario.register_transaction(transaction_with!(workload, "list", read::list))
            }
            ScenarioKind::BulkWrite => scenario.register_transaction(transaction_with!(
                workload,
                "bulk-write",
                bulk::bulk_write
            )),
            ScenarioKind::FanOut => scenario.register_transaction(transaction_with!(
                workload,
                "fan-out",
                fanout::fan_out
            )),
            ScenarioKind::Query => {
                scenario.register_transaction(transaction_with!(workload, "query", query::query))
            }
            ScenarioKind::Mixed => mixed::register(scenario, workload)?,
            ScenarioKind::Ryw => scenario.register_transaction(transaction_with!(
                workload,
                "ryw",
                ryw::write_then_read
            )),
            ScenarioKind::Live => {
                scenario.register_transaction(transaction_with!(workload, "live", live::live))
            }
            ScenarioKind::Verify => scenario.register_transaction(transaction_with!(
                workload,
                "verify",
                verify::write_and_check
            )),
        })
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScenarioKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        ScenarioKind::ALL
            .into_iter()
            .find(|kind| kind.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = ScenarioKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "no scenario named {text:?}; choose from {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back() {
        for kind in ScenarioKind::ALL {
            assert_eq!(kind.name().parse::<ScenarioKind>(), Ok(kind));
        }
        assert_eq!("READ_STRONG".parse(), Ok(ScenarioKind::ReadStrong));
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = "reed".parse::<ScenarioKind>().unwrap_err();
        assert!(err.contains("\"reed\"") && err.contains("read-strong, read-cached"));
    }

    #[test]
    fn reads_need_prefilled_records_and_writes_do_not() {
        assert!(ScenarioKind::Read.needs().users);
        assert!(ScenarioKind::List.needs().orders);
        assert!(!ScenarioKind::Write.needs().any());
        assert!(!ScenarioKind::FanOut.needs().any());
        assert!(!ScenarioKind::Live.needs().any());
    }
}
