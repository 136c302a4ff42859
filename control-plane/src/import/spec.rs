//! What an import reads: a table of the source database with its shard-key and id
//! columns, resolved from the catalog and quoted once, and every statement built from
//! them (the copy's pages, the lookup of changed rows, the digest, the capture and
//! freeze triggers). Pure: the names were checked against the catalog before.

/// A column of the source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// As the catalog spells it.
    pub name: String,
    /// `format_type` of the column, e.g. `bigint`, `character varying(64)`.
    pub type_name: String,
}

impl Column {
    pub fn quoted(&self) -> String {
        quote_ident(&self.name)
    }
}

/// The source table of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub schema: String,
    pub table: String,
    pub key: Column,
    pub id: Column,
}

/// The column types a key or id may have: those whose text form is the same in every
/// session (a `timestamptz`'s text depends on the session's time zone, a float's on
/// its settings), so the key a writer's trigger logs is the key the copy stored.
pub const KEY_TYPES: &[&str] = &[
    "text",
    "character varying",
    "character",
    "bigint",
    "integer",
    "smallint",
    "numeric",
    "uuid",
];

/// Whether a column of this type (as `format_type` prints it) can be a key or an id.
pub fn type_allowed(type_name: &str) -> bool {
    let base = type_name.split('(').next().unwrap_or("").trim();
    KEY_TYPES.contains(&base)
}

/// An SQL identifier, double-quoted (inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An SQL string literal (inner quotes doubled).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The schema that holds an import's change log on the source.
pub const LOG_SCHEMA: &str = "shardgate_import";

/// Creates the change log (once per source database).
pub const LOG_SQL: &str = "CREATE SCHEMA IF NOT EXISTS shardgate_import;
     CREATE TABLE IF NOT EXISTS shardgate_import.log (
         seq       BIGSERIAL PRIMARY KEY,
         import    BIGINT    NOT NULL,
         shard_key TEXT,
         id        TEXT
     );
     CREATE INDEX IF NOT EXISTS log_by_import ON shardgate_import.log (import, seq);";

impl SourceTable {
    /// `"schema"."table"`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// `schema.table`, for people.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// key text, id text, the row as JSON text: what a record is made of.
    fn columns(&self) -> String {
        format!(
            "t.{}::text, t.{}::text, to_jsonb(t)::text",
            self.key.quoted(),
            self.id.quoted()
        )
    }

    /// The first page of the copy: `$1` rows in (id, key) order.
    pub fn first_page_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} t ORDER BY t.{}, t.{} LIMIT $1",
            self.columns(),
            self.qualified(),
            self.id.quoted(),
            self.key.quoted()
        )
    }

    /// The page after the row whose id and key are `$1`, `$2` (text): `$3` rows.
    pub fn next_page_sql(&self) -> String {
        let (i, k) = (self.id.quoted(), self.key.quoted());
        format!(
            "SELECT {} FROM {} t WHERE (t.{i}, t.{k}) > ($1::text::{}, $2::text::{})
              ORDER BY t.{i}, t.{k} LIMIT $3",
            self.columns(),
            self.qualified(),
            self.id.type_name,
            self.key.type_name
        )
    }

    /// The current rows of the (key, id) pairs in `$1`, `$2` (text arrays).
    pub fn lookup_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} t
               JOIN unnest($1::text[], $2::text[]) AS u(k, i)
                 ON t.{} = u.k::{} AND t.{} = u.i::{}",
            self.columns(),
            self.qualified(),
            self.key.quoted(),
            self.key.type_name,
            self.id.quoted(),
            self.id.type_name
        )
    }

    /// Rows, rows whose key or id is NULL, and the sum of every row's 64-bit hash of
    /// (key, id) seeded with the hash of the row as JSON: the same digest
    /// [`super::verify`] reads from the shards (hashing the JSON value, not its text,
    /// costs about a sixth).
    pub fn digest_sql(&self) -> String {
        let (k, i) = (self.key.quoted(), self.id.quoted());
        format!(
            "SELECT count(*), count(*) FILTER (WHERE t.{k} IS NULL OR t.{i} IS NULL),
                    coalesce(sum(hashtextextended(t.{k}::text || chr(31) || t.{i}::text,
                                                  jsonb_hash_extended(to_jsonb(t), 0))::numeric),
                             0)::text
               FROM {} t",
            self.qualified()
        )
    }

    /// Rows the copy cannot place: a NULL or empty key or id, or a key longer than a
    /// shard key may be. `$1` limits how many are named.
    pub fn unplaceable_sql(&self) -> String {
        let (k, i) = (self.key.quoted(), self.id.quoted());
        format!(
            "SELECT t.{k}::text, t.{i}::text FROM {} t
              WHERE t.{k} IS NULL OR t.{i} IS NULL OR t.{k}::text = '' OR t.{i}::text = ''
                 OR octet_length(t.{k}::text) > 256
              LIMIT $1",
            self.qualified()
        )
    }

    /// One (key, id) held by two rows, if any: such rows would become one record.
    pub fn duplicate_sql(&self) -> String {
        let (k, i) = (self.key.quoted(), self.id.quoted());
        format!(
            "SELECT t.{k}::text, t.{i}::text FROM {} t GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 1",
            self.qualified()
        )
    }

    /// The capture of import `id`: a trigger in the writer's own transaction logs the
    /// (key, id) of every row inserted, updated or deleted (both pairs when an update
    /// changes them); a TRUNCATE, which no row trigger sees, is refused meanwhile.
    /// Replaces an earlier install atomically when run in one transaction.
    pub fn capture_sql(&self, id: i64) -> String {
        let (k, i, q) = (self.key.quoted(), self.id.quoted(), self.qualified());
        format!(
            "CREATE OR REPLACE FUNCTION shardgate_import.capture_{id}() RETURNS trigger
             LANGUAGE plpgsql AS $sg$
             BEGIN
                 IF TG_OP = 'TRUNCATE' THEN
                     RAISE EXCEPTION 'Shardgate import {id} is copying this table: TRUNCATE is refused until it cuts over or is aborted'
                         USING ERRCODE = 'SG004';
                 END IF;
                 IF TG_OP <> 'INSERT' THEN
                     INSERT INTO shardgate_import.log (import, shard_key, id)
                     VALUES ({id}, OLD.{k}::text, OLD.{i}::text);
                 END IF;
                 IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND
                     (NEW.{k} IS DISTINCT FROM OLD.{k} OR NEW.{i} IS DISTINCT FROM OLD.{i})) THEN
                     INSERT INTO shardgate_import.log (import, shard_key, id)
                     VALUES ({id}, NEW.{k}::text, NEW.{i}::text);
                 END IF;
                 RETURN NULL;
             END
             $sg$;
             DROP TRIGGER IF EXISTS shardgate_import_{id} ON {q};
             CREATE TRIGGER shardgate_import_{id} AFTER INSERT OR UPDATE OR DELETE ON {q}
                 FOR EACH ROW EXECUTE FUNCTION shardgate_import.capture_{id}();
             DROP TRIGGER IF EXISTS shardgate_import_{id}_truncate ON {q};
             CREATE TRIGGER shardgate_import_{id}_truncate BEFORE TRUNCATE ON {q}
                 FOR EACH STATEMENT EXECUTE FUNCTION shardgate_import.capture_{id}();"
        )
    }

    /// Removes import `id`'s capture and its log.
    pub fn release_sql(&self, id: i64) -> String {
        let q = self.qualified();
        format!(
            "DROP TRIGGER IF EXISTS shardgate_import_{id} ON {q};
             DROP TRIGGER IF EXISTS shardgate_import_{id}_truncate ON {q};
             DROP FUNCTION IF EXISTS shardgate_import.capture_{id}();
             DELETE FROM shardgate_import.log WHERE import = {id};"
        )
    }

    /// The cut-over's last word on the source: every later write to the table is
    /// refused (SQLSTATE SG003) with a message saying where the data went, so an
    /// application still writing to the old database fails loudly instead of writing
    /// what nobody will read.
    pub fn freeze_sql(&self, id: i64, into: &str) -> String {
        let q = self.qualified();
        // RAISE reads % as a placeholder.
        let message = quote_literal(
            &format!(
                "table {} was imported into Shardgate (import {id}, table {into}): write through the gateway",
                self.display()
            )
            .replace('%', "%%"),
        );
        format!(
            "CREATE OR REPLACE FUNCTION shardgate_import.moved_{id}() RETURNS trigger
             LANGUAGE plpgsql AS $sg$
             BEGIN
                 RAISE EXCEPTION {message} USING ERRCODE = 'SG003';
             END
             $sg$;
             DROP TRIGGER IF EXISTS shardgate_import_{id}_moved ON {q};
             CREATE TRIGGER shardgate_import_{id}_moved
                 BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {q}
                 FOR EACH STATEMENT EXECUTE FUNCTION shardgate_import.moved_{id}();"
        )
    }
}

/// The trigger names an import leaves on the source table (to check what is there).
pub fn trigger_name(id: i64, suffix: &str) -> String {
    match suffix {
        "" => format!("shardgate_import_{id}"),
        s => format!("shardgate_import_{id}_{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> SourceTable {
        SourceTable {
            schema: "public".into(),
            table: "Shop \"Orders\"".into(),
            key: Column {
                name: "customer".into(),
                type_name: "character varying(64)".into(),
            },
            id: Column {
                name: "order_id".into(),
                type_name: "bigint".into(),
            },
        }
    }

    #[test]
    fn names_are_quoted_once() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(orders().qualified(), "\"public\".\"Shop \"\"Orders\"\"\"");
    }

    #[test]
    fn only_types_with_a_fixed_text_form_can_key() {
        for ok in [
            "text",
            "bigint",
            "character varying(64)",
            "numeric(10,2)",
            "uuid",
        ] {
            assert!(type_allowed(ok), "{ok}");
        }
        for no in [
            "timestamp with time zone",
            "double precision",
            "jsonb",
            "date",
        ] {
            assert!(!type_allowed(no), "{no}");
        }
    }

    #[test]
    fn pages_follow_id_then_key_with_native_comparison() {
        let sql = orders().next_page_sql();
        assert!(sql.contains(
            "(t.\"order_id\", t.\"customer\") > ($1::text::bigint, $2::text::character varying(64))"
        ));
        assert!(sql.contains("ORDER BY t.\"order_id\", t.\"customer\" LIMIT $3"));
        assert!(orders().lookup_sql().contains(
            "ON t.\"customer\" = u.k::character varying(64) AND t.\"order_id\" = u.i::bigint"
        ));
    }

    #[test]
    fn the_freeze_message_names_where_the_data_went() {
        let sql = orders().freeze_sql(7, "orders");
        assert!(sql.contains(
            "'table public.Shop \"Orders\" was imported into Shardgate (import 7, table orders): write through the gateway'"
        ));
        assert!(sql.contains("ERRCODE = 'SG003'"));
        assert_eq!(trigger_name(7, "moved"), "shardgate_import_7_moved");
    }
}
