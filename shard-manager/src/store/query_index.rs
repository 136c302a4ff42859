//! An index for queries (`POST /api/query`) on some fields of one table: its name, and
//! the SQL that builds, drops and inspects it on a shard. The control plane runs these
//! on every primary (`control_plane::indexes`); nothing here does I/O.
//!
//! ## What it holds
//! `(f1's rank, f1's number, f1's text prefix, f2's ..., shard_key, id)` over its own
//! table's records only (a partial index, `WHERE table_name = '<table>'`): each field's
//! keys exactly as a query writes them ([`super::query_statement::index_keys`]), so
//! the planner matches them literally. A text key is held as its first
//! [`INDEXED_TEXT_CHARS`] characters: an entry is at most a few kB whatever the values,
//! so no stored or written value is too large for an index, and another table's records
//! never reach it. It serves, for its table:
//! - a sort on its fields, in its order (the first fields it names, `asc` or all
//!   `desc`): the rows come in order from the index and a page stops after `limit + 1`;
//! - `eq` on a number or a string, and `gt`, `gte`, `lt`, `lte`, `prefix` on the first
//!   field (or on a later one when each field before it has an `eq`): a range scan.
//!
//! `ne`, `nin`, `in`, `exists` and `contains`, and `eq` on `null`, a boolean, an array
//! or an object, filter the rows the index (or the table) yields.

use super::query::{FieldPath, QueryError};
use super::query_statement::index_keys;
pub use super::query_statement::INDEXED_TEXT_CHARS;

/// The most fields one index may have.
pub const MAX_INDEX_FIELDS: usize = 4;

/// The most indexes one table may have: each costs every write to the table an entry.
pub const MAX_INDEXES_PER_TABLE: usize = 8;

/// Why an index cannot be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexSpecError {
    #[error("`fields` is empty; name 1 to {MAX_INDEX_FIELDS} dotted paths")]
    NoFields,
    #[error("`fields` has {0} entries; an index has at most {MAX_INDEX_FIELDS}")]
    TooManyFields(usize),
    #[error("`fields` names {0:?} twice")]
    DuplicateField(String),
    #[error(transparent)]
    BadPath(#[from] QueryError),
}

/// An index on `fields` of `table`'s records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub table: String,
    pub fields: Vec<FieldPath>,
}

impl IndexSpec {
    /// Checks the fields (paths as queries take them, 1 to [`MAX_INDEX_FIELDS`], none
    /// twice). The table is checked by the caller against the configured ones.
    pub fn parse(table: &str, fields: &[String]) -> Result<Self, IndexSpecError> {
        if fields.is_empty() {
            return Err(IndexSpecError::NoFields);
        }
        if fields.len() > MAX_INDEX_FIELDS {
            return Err(IndexSpecError::TooManyFields(fields.len()));
        }
        let mut parsed: Vec<FieldPath> = Vec::with_capacity(fields.len());
        for f in fields {
            let path = FieldPath::parse(f)?;
            if parsed.contains(&path) {
                return Err(IndexSpecError::DuplicateField(f.clone()));
            }
            parsed.push(path);
        }
        Ok(Self {
            table: table.to_owned(),
            fields: parsed,
        })
    }

    /// The fields as clients write them.
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.as_str().to_owned()).collect()
    }

    /// The index's name on every shard, the same for the same table and fields:
    /// `qi_` and a readable part (lowercase letters, digits, `_`), then a hash of the
    /// exact table and fields, so two specs never share a name; at most 63 bytes.
    pub fn name(&self) -> String {
        let readable: String = std::iter::once(self.table.as_str())
            .chain(self.fields.iter().map(FieldPath::as_str))
            .collect::<Vec<_>>()
            .join("_")
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' => c,
                'A'..='Z' => c.to_ascii_lowercase(),
                _ => '_',
            })
            .take(40)
            .collect();
        let mut exact = self.table.clone();
        for f in &self.fields {
            exact.push('\0');
            exact.push_str(f.as_str());
        }
        format!("qi_{readable}_{:08x}", fnv1a(exact.as_bytes()))
    }

    /// `CREATE INDEX CONCURRENTLY IF NOT EXISTS` of this index (outside a transaction),
    /// over its table's records only.
    pub fn create_sql(&self) -> String {
        let mut columns = Vec::new();
        for f in &self.fields {
            columns.extend(index_keys("data", f.segments()).map(|k| format!("({k})")));
        }
        columns.push("shard_key COLLATE \"C\"".into());
        columns.push("id COLLATE \"C\"".into());
        format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON records ({}) WHERE table_name = '{}'",
            quoted(&self.name()),
            columns.join(", "),
            self.table.replace('\'', "''")
        )
    }
}

/// `DROP INDEX CONCURRENTLY IF EXISTS` of the index `name` (outside a transaction).
/// `name` must be one [`IndexSpec::name`] made (checked by [`is_index_name`]).
pub fn drop_sql(name: &str) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quoted(name))
}

/// Whether `name` is of the form [`IndexSpec::name`] gives: what `DELETE` accepts.
pub fn is_index_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with("qi_")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The index's state on a shard: one row (`indisvalid`, `indisready`) if it exists.
/// Binds the name (text).
pub const STATE_SQL: &str = "SELECT i.indisvalid, i.indisready FROM pg_index i \
     JOIN pg_class c ON c.oid = i.indexrelid \
     WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace";

/// The session lock one worker on an index holds on a shard while it builds or drops
/// it (two int4 keys: this namespace and [`lock_key`]).
pub const LOCK_SPACE: i32 = 0x5347_4958; // "SGIX"

/// The second key of an index's lock.
pub fn lock_key(name: &str) -> i32 {
    (fnv1a(name.as_bytes()) & 0x7fff_ffff) as i32
}

/// Whether some session holds the index's lock on this database. Binds the key (int4).
pub const LOCK_HELD_SQL: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks l \
     JOIN pg_database d ON d.oid = l.database AND d.datname = current_database() \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
     AND l.classid = 1397180760 AND l.objid = $1::int4::int8::oid)";

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// FNV-1a, 32 bits: a stable hash (names must not change between releases).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_distinct_and_fit() {
        let a = IndexSpec::parse("users", &["address.city".into()]).unwrap();
        let b = IndexSpec::parse("users", &["address_city".into()]).unwrap();
        assert_eq!(a.name(), a.clone().name());
        assert_ne!(a.name(), b.name());
        assert!(
            a.name().starts_with("qi_users_address_city_"),
            "{}",
            a.name()
        );
        assert!(is_index_name(&a.name()));
        let long = IndexSpec::parse(&"T".repeat(60), &["x".repeat(64)]).unwrap();
        assert!(long.name().len() <= 63 && is_index_name(&long.name()));
        assert!(!is_index_name("records_pkey") && !is_index_name("qi_x\"; DROP"));
        assert_eq!(LOCK_SPACE, 1_397_180_760, "LOCK_HELD_SQL names it");
    }

    #[test]
    fn the_index_holds_the_keys_a_query_orders_by() {
        let spec = IndexSpec::parse("users", &["age".into()]).unwrap();
        let sql = spec.create_sql();
        let [rank, number, prefix] = index_keys("data", &["age".to_owned()]);
        assert!(sql.starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"qi_users_age_"));
        assert!(sql.contains(&format!(
            "records (({rank}), ({number}), ({prefix}), shard_key"
        )));
        assert!(
            prefix.starts_with("left(") && prefix.ends_with(", 64)"),
            "{prefix}"
        );
        // Its table's records only.
        assert!(sql.ends_with(" WHERE table_name = 'users'"), "{sql}");
        let odd = IndexSpec::parse("it's", &["age".into()]).unwrap();
        assert!(odd.create_sql().ends_with(" WHERE table_name = 'it''s'"));
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(IndexSpec::parse("t", &[]), Err(IndexSpecError::NoFields));
        let five: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
        assert_eq!(
            IndexSpec::parse("t", &five),
            Err(IndexSpecError::TooManyFields(5))
        );
        assert_eq!(
            IndexSpec::parse("t", &["a".into(), "a".into()]),
            Err(IndexSpecError::DuplicateField("a".into()))
        );
        assert!(matches!(
            IndexSpec::parse("t", &["a b".into()]),
            Err(IndexSpecError::BadPath(_))
        ));
    }
}
