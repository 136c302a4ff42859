//! What a database error means, decided by its SQLSTATE alone: one table, read by every
//! place that decides (the server's failure mapping, the write rules, the wire client's
//! re-prepare and the idempotency rerun, and the control plane's moves, imports and
//! index work). Never by message text: a server's messages change with its version and
//! with `lc_messages`, its SQLSTATEs do not.
//!
//! ## Layout
//! - [`TABLE`] and [`decide`]: a code's [`Decision`], the request path's.
//! - Named codes ([`LOCK_NOT_AVAILABLE`], ...): the few a place decides on one by one,
//!   where a [`Decision`] is broader than it needs or none is made; each is checked
//!   against its row.
//! - [`interrupted`] and [`worth_waiting`]: what work outside the request path (an
//!   index build, a move) waits out rather than fail.

/// What the gateway does about a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The server is gone or going (the connection failed, the server is shutting down,
    /// crashed or still starting): mark it down; a read may go to another server.
    Down,
    /// The server is up but read-only (a primary demoted to a standby): nothing was
    /// written; the shard needs its new primary.
    ReadOnly,
    /// The statement ran past `statement_timeout` (or was cancelled).
    TimedOut,
    /// Our schema is not there (a table or one of the ownership functions is missing):
    /// migrations not applied.
    NoSchema,
    /// The shard refused the key's slot (SG001, raised by the ownership functions; its
    /// DETAIL is the map version the shard goes by): the map moved on.
    SlotMoved,
    /// Another request with the same idempotency key committed first (SG002): this one
    /// was rolled back, and is run once more to read that request's answer.
    KeyTaken,
    /// A serialization failure or a deadlock: the transaction was rolled back, nothing
    /// committed, running it again is safe.
    Conflict,
    /// The connection's prepared statements are stale (a schema change altered what one
    /// returns, or something between us and the server dropped them): prepare again.
    StaleStatements,
    /// A transaction's condition failed (SG005, raised by `shardgate_txn_lock`; its
    /// DETAIL is the record's current version): that part was rolled back.
    ConditionFailed,
    /// A transaction sent with an idempotency key was applied before (SG006, raised by
    /// `shardgate_txn_seen`; its DETAIL is the key's entries on the shard): this part was
    /// rolled back, and the answer is read from the entries.
    Replayed,
    /// No prepared transaction has that name (any more): another gateway's recovery, or
    /// an earlier attempt, already committed or rolled it back.
    NoSuchPrepared,
    /// The record's own data cannot be stored (a value too large for an index, a
    /// number out of range, a character the database cannot hold, a check the table
    /// makes): nothing was written, and the same record will be refused again. The
    /// client's to change, never the server's: no other write pays for it.
    DataRefused,
    /// Anything else: the statement failed; answered as it is.
    Other,
}

use Decision::*;

/// Every SQLSTATE the gateway acts on. A code not listed is [`Other`], except the
/// connection exception class `08`, which is [`Down`] whatever its subclass.
pub const TABLE: &[(&str, Decision)] = &[
    ("08000", Down),            // connection_exception
    ("08003", Down),            // connection_does_not_exist
    ("08006", Down),            // connection_failure
    ("57P01", Down),            // admin_shutdown (a fast or immediate stop)
    ("57P02", Down),            // crash_shutdown
    ("57P03", Down),            // cannot_connect_now (starting up, shutting down, recovering)
    ("25006", ReadOnly),        // read_only_sql_transaction
    ("57014", TimedOut),        // query_canceled (statement_timeout)
    ("42P01", NoSchema),        // undefined_table
    ("42883", NoSchema),        // undefined_function (the ownership functions)
    ("SG001", SlotMoved),       // the shard's own: this shard does not own the slot
    ("SG002", KeyTaken),        // the shard's own: another request with the key committed
    ("SG005", ConditionFailed), // the shard's own: a transaction's if_version did not hold
    ("SG006", Replayed),        // the shard's own: a keyed transaction was applied before
    ("42704", NoSuchPrepared),  // undefined_object: COMMIT/ROLLBACK PREPARED of no such name
    ("40001", Conflict),        // serialization_failure
    ("40P01", Conflict),        // deadlock_detected
    ("55P03", Conflict),        // lock_not_available (lock_timeout: a deadlock across shards)
    ("0A000", StaleStatements), // feature_not_supported: cached plan must not change result type
    ("26000", StaleStatements), // invalid_sql_statement_name: the prepared statement is gone
    ("54000", DataRefused),     // program_limit_exceeded: e.g. an index row too large
    ("54001", DataRefused),     // statement_too_complex: a document nested too deep
    ("22003", DataRefused),     // numeric_value_out_of_range
    ("22021", DataRefused),     // character_not_in_repertoire
    ("22P05", DataRefused),     // untranslatable_character
    ("23514", DataRefused),     // check_violation
];

/// What `code` means (see [`TABLE`]).
pub fn decide(code: &str) -> Decision {
    match TABLE.iter().find(|(c, _)| *c == code) {
        Some((_, decision)) => *decision,
        None if code.starts_with(CONNECTION_EXCEPTION) => Down,
        None => Other,
    }
}

/// Class 08, connection_exception: every code of it is [`Down`].
const CONNECTION_EXCEPTION: &str = "08";
/// Class 53, insufficient_resources: too many connections, out of memory or disk.
const INSUFFICIENT_RESOURCES: &str = "53";
/// Class 57, operator_intervention: a shutdown, a start, a cancel, a statement timeout.
const OPERATOR_INTERVENTION: &str = "57";

/// lock_not_available, one of the [`Conflict`]s: a lock not granted within
/// `lock_timeout`. A bounded write batch sends the write refused so, and the same
/// record's other writes, alone.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";
/// undefined_table, one of the [`NoSchema`]s: the identity check on a shard not yet
/// given `shardgate_map` (before `init`) asks again without it.
pub const UNDEFINED_TABLE: &str = "42P01";
/// insufficient_privilege ([`Other`]): `pg_control_system()` revoked (a managed
/// service); the identity check asks again without the system identifier.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// invalid_parameter_value ([`Other`]): `SET TRANSACTION SNAPSHOT` of a snapshot no
/// longer exported: a next page's cut expired.
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// read_only_sql_transaction ([`ReadOnly`]): what a refusal for a read-only server
/// reports.
pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
/// The shard's own ([`SlotMoved`]): this shard does not own the slot; what a refusal for
/// a slot moved away reports.
pub const SLOT_NOT_OWNED: &str = "SG001";

/// Whether work outside the request path (an index build) that met `code` was
/// interrupted, and is tried again later: the server is [`Down`] (its connection lost, a
/// shutdown, a start) or short of resources (class 53). A cancel or a statement timeout
/// (57014) is an end, not an interruption.
pub fn interrupted(code: &str) -> bool {
    decide(code) == Down || code.starts_with(INSUFFICIENT_RESOURCES)
}

/// Whether a move that met `code` waits and tries again rather than fail: the server was
/// [`interrupted`], is read-only ([`ReadOnly`]: a primary promoted but not yet taking
/// writes, as pg_auto_failover promotes its secondary read-only until the old primary is
/// given up; one a switchover drains; a demoted one the map still names), or an
/// operator intervened (class 57, a cancel included). The request path waits on these
/// too (`retry`).
pub fn worth_waiting(code: &str) -> bool {
    interrupted(code) || decide(code) == ReadOnly || code.starts_with(OPERATOR_INTERVENTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One assertion per row of the table, written out (not read from it).
    #[test]
    fn every_row_decides_as_written() {
        let rows = [
            ("08000", Down),
            ("08003", Down),
            ("08006", Down),
            ("57P01", Down),
            ("57P02", Down),
            ("57P03", Down),
            ("25006", ReadOnly),
            ("57014", TimedOut),
            ("42P01", NoSchema),
            ("42883", NoSchema),
            ("SG001", SlotMoved),
            ("SG002", KeyTaken),
            ("SG005", ConditionFailed),
            ("SG006", Replayed),
            ("42704", NoSuchPrepared),
            ("40001", Conflict),
            ("40P01", Conflict),
            ("55P03", Conflict),
            ("0A000", StaleStatements),
            ("26000", StaleStatements),
            ("54000", DataRefused),
            ("54001", DataRefused),
            ("22003", DataRefused),
            ("22021", DataRefused),
            ("22P05", DataRefused),
            ("23514", DataRefused),
        ];
        assert_eq!(rows.len(), TABLE.len(), "a row without its test");
        for (code, expected) in rows {
            assert_eq!(decide(code), expected, "{code}");
        }
    }

    #[test]
    fn the_connection_class_is_down_and_the_rest_is_other() {
        assert_eq!(decide("08P01"), Down); // protocol_violation
        assert_eq!(decide("08001"), Down);
        assert_eq!(decide("22P02"), Other); // invalid_text_representation
        assert_eq!(decide("23505"), Other); // unique_violation
        assert_eq!(decide("53300"), Other); // too_many_connections
        assert_eq!(decide("XX000"), Other);
        assert_eq!(decide(""), Other);
    }

    #[test]
    fn named_codes_decide_as_their_rows() {
        assert_eq!(decide(LOCK_NOT_AVAILABLE), Conflict);
        assert_eq!(decide(UNDEFINED_TABLE), NoSchema);
        assert_eq!(decide(INSUFFICIENT_PRIVILEGE), Other);
        assert_eq!(decide(INVALID_PARAMETER_VALUE), Other);
        assert_eq!(decide(READ_ONLY_SQL_TRANSACTION), ReadOnly);
        assert_eq!(decide(SLOT_NOT_OWNED), SlotMoved);
    }

    #[test]
    fn a_server_going_away_or_short_of_resources_interrupts_and_a_cancel_ends() {
        for code in [
            "08006", "08P01", "57P01", "57P02", "57P03", "53300", "53100",
        ] {
            assert!(interrupted(code), "{code}");
        }
        // A cancel or timeout, a read-only server, a unique violation, a missing table.
        for code in ["57014", "25006", "23505", "42P01", ""] {
            assert!(!interrupted(code), "{code}");
        }
    }

    #[test]
    fn a_read_only_or_unavailable_server_is_waited_for_and_nothing_else() {
        for code in ["08006", "57P01", "57P03", "57014", "53300", "25006"] {
            assert!(worth_waiting(code), "{code}");
        }
        // Another transaction state, a unique violation, a missing table, a syntax error.
        for code in ["25P02", "23505", "42P01", "42601", ""] {
            assert!(!worth_waiting(code), "{code}");
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<&str> = TABLE.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }
}
