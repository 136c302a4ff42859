//! `shard-admin query`: a table's records that match conditions, sorted, a page at a
//! time across every shard: `POST /api/query` from the command line, through the same
//! checks (`shard_manager::store::query`, every fault refused naming it before anything
//! is read) and the same library call (`Cluster::query`).
//!
//! A condition is `--where 'FIELD OP VALUE'`: VALUE is JSON when it parses as JSON
//! (`40`, `["London","Paris"]`, `true`), else the text as a string (`--where 'name
//! prefix Al'`); `exists` takes none. One page is printed as the API answers it (its
//! `next` goes back in with `--cursor`); `--all` follows the cursor to the end and
//! prints each record as one JSON line, then a summary on standard error.

use std::io::Write;

use serde_json::{json, Value};
use shard_manager::cluster::query::QueryAnswer;
use shard_manager::config::ClusterSettings;
use shard_manager::store::query::{
    project, Condition, CountMode, Direction, FieldPath, Query, QueryCursor, QueryError, SortField,
};
use shard_manager::store::{TableName, Tables};
use shard_manager::{Cluster, ClusterError, Consistency};

use super::stored_map;
use crate::audit::{Judged, Outcome};

/// The most bytes of records one page holds (its first record always fits), as a
/// gateway's default `server.max_read_bytes`.
const PAGE_BYTES: usize = 8 << 20;

/// `query`: which table, which records, in which order, which fields.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The table (one of `tables.allowed`).
    #[arg(long)]
    pub table: String,
    /// A condition, `FIELD OP VALUE` (repeat for several; all must hold). OP: eq, ne,
    /// gt, gte, lt, lte, in, nin, exists, prefix, contains.
    #[arg(long = "where", value_name = "FIELD OP VALUE")]
    pub conditions: Vec<String>,
    /// Sort fields, most significant first, comma separated, each `field` or
    /// `field:desc`; ties are broken by shard key, then id.
    #[arg(long)]
    pub sort: Option<String>,
    /// Only these fields of each record's data, comma separated dotted paths.
    #[arg(long)]
    pub fields: Option<String>,
    /// Records per page, 1 to 10000 (default 10; 1000 with --all).
    #[arg(long)]
    pub limit: Option<u64>,
    /// The `next` of the previous page, with the same query.
    #[arg(long)]
    pub cursor: Option<String>,
    /// `exact` or `estimated`: the answer's `total`.
    #[arg(long)]
    pub count: Option<String>,
    /// `eventual` (default) or `strong` (`snapshot` is the HTTP API's: a gateway holds
    /// the cut between pages).
    #[arg(long)]
    pub consistency: Option<String>,
    /// Each shard's plan of its page in the answer.
    #[arg(long)]
    pub explain: bool,
    /// Every page, each record as one JSON line.
    #[arg(long, conflicts_with_all = ["cursor", "explain", "count"])]
    pub all: bool,
}

/// Why `query` printed no records.
#[derive(Debug, thiserror::Error)]
pub enum QueryCommandError {
    /// A bad argument: nothing was read.
    #[error("{0}")]
    Refused(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the cluster configuration is invalid: {0}")]
    Config(#[from] shard_manager::ConfigError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("writing the records: {0}")]
    Write(#[source] std::io::Error),
}

impl Judged for QueryCommandError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) | Self::Config(_) => Outcome::Refused,
            Self::Runtime(_) | Self::Cluster(_) | Self::Write(_) => Outcome::Failed,
        }
    }
}

impl From<QueryError> for QueryCommandError {
    fn from(e: QueryError) -> Self {
        Self::Refused(e.to_string())
    }
}

/// Runs the query, writing to `out` the page as the API answers it, or with `--all`
/// every record, one JSON line each, as its page comes.
pub fn run(
    settings: &ClusterSettings,
    args: QueryArgs,
    out: &mut dyn Write,
) -> Result<(), QueryCommandError> {
    let table = Tables::new(settings.tables.allowed.clone())
        .parse(&args.table)
        .map_err(|e| QueryCommandError::Refused(e.to_string()))?;
    let consistency = match args.consistency.as_deref() {
        None => Consistency::Eventual,
        Some(raw) if raw.trim().eq_ignore_ascii_case("snapshot") => {
            return Err(QueryCommandError::Refused(
                "--consistency snapshot: a cut is held by a gateway between pages; ask \
                 POST /api/query for it, or use eventual or strong here"
                    .into(),
            ))
        }
        Some(raw) => Consistency::parse(raw)
            .map_err(|e| QueryCommandError::Refused(format!("--consistency: {e}")))?,
    };
    let query = parse(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(QueryCommandError::Runtime)?;
    rt.block_on(async {
        let cluster = stored_map::cluster(settings).await?;
        let result = match args.all {
            false => one_page(&cluster, &table, &query, consistency, out).await,
            true => every_page(&cluster, &table, query, consistency, out).await,
        };
        cluster.close();
        result
    })
}

/// The query the arguments ask, checked; refused naming the first fault.
pub fn parse(args: &QueryArgs) -> Result<Query, QueryCommandError> {
    let filter = args
        .conditions
        .iter()
        .map(|c| condition(c))
        .collect::<Result<Vec<_>, _>>()?;
    let sort = list(args.sort.as_deref())
        .map(|s| {
            let (field, order) = match s.rsplit_once(':') {
                Some((field, order)) => (field, Some(order)),
                None => (s, None),
            };
            Ok(SortField {
                path: FieldPath::parse(field)?,
                direction: Direction::parse(field, order)?,
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let fields = args
        .fields
        .as_deref()
        .map(|f| list(Some(f)).map(FieldPath::parse).collect())
        .transpose()?;
    let limit = args.limit.unwrap_or(if args.all { 1000 } else { 10 });
    let mut query = Query::new(filter, sort, fields, &Value::from(limit))?;
    query.after = args
        .cursor
        .as_deref()
        .map(|c| QueryCursor::decode(c, query.sort.len()))
        .transpose()?;
    query.count = args.count.as_deref().map(CountMode::parse).transpose()?;
    query.max_bytes = PAGE_BYTES;
    query.explain = args.explain;
    Ok(query)
}

/// `FIELD OP VALUE` as a condition: VALUE as JSON when it parses, else as a string.
fn condition(text: &str) -> Result<Condition, QueryCommandError> {
    let mut parts = text.trim().splitn(3, char::is_whitespace);
    let (Some(field), Some(op)) = (parts.next(), parts.next()) else {
        return Err(QueryCommandError::Refused(format!(
            "--where {text:?}: write FIELD OP VALUE, e.g. 'age gte 40'"
        )));
    };
    let value = parts.next().map(str::trim).map(|raw| {
        serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
    });
    Ok(Condition::parse(field, op, value.as_ref())?)
}

/// The comma-separated items of `text`, trimmed, empty ones left out.
fn list(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// One page, printed as `POST /api/query` answers it.
async fn one_page(
    cluster: &Cluster,
    table: &TableName,
    query: &Query,
    consistency: Consistency,
    out: &mut dyn Write,
) -> Result<(), QueryCommandError> {
    let answer = cluster.query(table, query, consistency).await?;
    let records: Vec<Value> = records(query, &answer).collect();
    let mut page = json!({
        "count": records.len(),
        "records": records,
        "shards": answer.answered.iter().map(|(shard, role)| {
            json!({"shard": shard.0, "source": role.as_str()})
        }).collect::<Vec<_>>(),
    });
    if let Some(next) = &answer.next {
        page["next"] = Value::from(next.encode());
    }
    if let Some(total) = answer.total {
        page["total"] = Value::from(total);
    }
    if query.explain {
        page["plans"] = answer
            .plans
            .iter()
            .map(|(shard, plan)| json!({"shard": shard.0, "plan": plan}))
            .collect();
    }
    let text = serde_json::to_string_pretty(&page).unwrap_or_default();
    writeln!(out, "{text}").map_err(QueryCommandError::Write)
}

/// Every page, following the cursor: each record as one JSON line; the count on
/// standard error.
async fn every_page(
    cluster: &Cluster,
    table: &TableName,
    mut query: Query,
    consistency: Consistency,
    out: &mut dyn Write,
) -> Result<(), QueryCommandError> {
    let mut n = 0u64;
    loop {
        let answer = cluster.query(table, &query, consistency).await?;
        for record in records(&query, &answer) {
            writeln!(out, "{record}").map_err(QueryCommandError::Write)?;
            n += 1;
        }
        match answer.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    out.flush().map_err(QueryCommandError::Write)?;
    eprintln!("{n} records of table {}", table.as_str());
    Ok(())
}

/// The page's records as the API shows them, `data` cut to `fields` when asked.
fn records<'a>(query: &'a Query, answer: &'a QueryAnswer) -> impl Iterator<Item = Value> + 'a {
    answer.rows.iter().map(|(shard, row)| {
        let mut record = serde_json::to_value(&row.record).unwrap_or_default();
        let data = row.record.data.to_value();
        record["data"] = match &query.fields {
            Some(fields) => project(&data, fields),
            None => data,
        };
        json!({"shard": shard.0, "record": record})
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: QueryArgs,
    }

    fn args(words: &[&str]) -> QueryArgs {
        let argv = std::iter::once("query").chain(words.iter().copied());
        Cli::try_parse_from(argv).expect("arguments parse").args
    }

    fn refused(words: &[&str]) -> String {
        match parse(&args(words)) {
            Err(QueryCommandError::Refused(why)) => why,
            other => panic!("{words:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn conditions_take_json_values_or_else_text() {
        let q = parse(&args(&[
            "--table",
            "users",
            "--where",
            "age gte 40",
            "--where",
            r#"address.city in ["London", "Paris"]"#,
            "--where",
            "name prefix Al Smith",
            "--where",
            "email exists",
        ]))
        .unwrap();
        let want = [
            Condition::parse("age", "gte", Some(&json!(40))).unwrap(),
            Condition::parse("address.city", "in", Some(&json!(["London", "Paris"]))).unwrap(),
            Condition::parse("name", "prefix", Some(&json!("Al Smith"))).unwrap(),
            Condition::parse("email", "exists", None).unwrap(),
        ];
        assert_eq!(q.filter, want);
        assert_eq!(q.limit, 10);
    }

    #[test]
    fn sort_fields_and_limits_parse_as_the_api_takes_them() {
        let q = parse(&args(&[
            "--table",
            "users",
            "--sort",
            "score:desc, name",
            "--fields",
            "name,score",
            "--limit",
            "50",
            "--count",
            "exact",
        ]))
        .unwrap();
        let sort: Vec<_> = q
            .sort
            .iter()
            .map(|s| (s.path.as_str(), s.direction))
            .collect();
        assert_eq!(sort, [("score", Direction::Desc), ("name", Direction::Asc)]);
        let fields: Vec<_> = q
            .fields
            .unwrap()
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(fields, ["name", "score"]);
        assert_eq!((q.limit, q.count), (50, Some(CountMode::Exact)));
        assert_eq!(
            parse(&args(&["--table", "users", "--all"])).unwrap().limit,
            1000
        );
    }

    #[test]
    fn every_fault_is_refused_naming_it() {
        let cases: [(&[&str], &str); 7] = [
            (&["--table", "users", "--where", "age"], "FIELD OP VALUE"),
            (
                &["--table", "users", "--where", "age between 4"],
                "unknown operator",
            ),
            (
                &["--table", "users", "--where", "age gt [1]"],
                "compares a number or a string",
            ),
            (
                &["--table", "users", "--sort", "score:up"],
                "unknown sort order",
            ),
            (&["--table", "users", "--limit", "0"], "limit is 0"),
            (&["--table", "users", "--count", "some"], "unknown count"),
            (&["--table", "users", "--cursor", "nope"], "invalid cursor"),
        ];
        for (words, names) in cases {
            let why = refused(words);
            assert!(why.contains(names), "{words:?}: {why}");
        }
    }
}
