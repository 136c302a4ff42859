//! What a wire failure means, before `Server::failure` turns it into the
//! `ClusterError` naming the server: from its SQLSTATE (`crate::error::sqlstate`), or, for a failure
//! that is not a server's refusal, from its kind (a lost socket, failed TLS or sign-in,
//! an answer out of turn: the server is down to us; a value that does not decode: the
//! data's fault).

use crate::error::sqlstate::{decide, Decision};
use crate::wire::WireError;

/// How the ownership functions (migration `slot_ownership`) begin their refusal: the
/// slots follow. Only to show the slots: SG001 is what decides.
const NOT_OWNER: &str = "this shard does not own slot ";

/// What a wire failure means.
#[derive(Debug, PartialEq)]
pub(crate) enum Failure {
    /// The server is gone to us: the reason, for people.
    Down(String),
    /// The server is read-only (a demoted primary).
    ReadOnly,
    TimedOut,
    /// The schema is not there: migrations not applied.
    NoSchema,
    /// The shard does not own the slot: the slots it named, and the map version it
    /// goes by (its DETAIL).
    NotOwner {
        slots: String,
        told: u64,
    },
    /// A row came back that does not decode: the data's fault; connection and server
    /// are fine.
    Undecodable(String),
    /// Rolled back for a concurrent transaction: a deadlock, a serialization failure,
    /// or a lock not granted within `lock_timeout` (a deadlock across shards, which no
    /// one server can see). Nothing was written; the client may retry.
    Conflict,
    /// The record's own data cannot be stored: nothing was written; the client's to
    /// change.
    DataRefused,
    /// Refused for another reason: answered with its SQLSTATE.
    Refused,
}

pub(crate) fn classify(err: &WireError) -> Failure {
    let refusal = match err {
        WireError::Server(refusal) => refusal,
        WireError::Undecodable(what) => return Failure::Undecodable(what.clone()),
        lost @ (WireError::Io(_)
        | WireError::Auth(_)
        | WireError::Tls(_)
        | WireError::Protocol(_)
        | WireError::NotThePrimary(_)) => return Failure::Down(lost.to_string()),
    };
    match decide(&refusal.code) {
        Decision::Down => Failure::Down(refusal.to_string()),
        Decision::ReadOnly => Failure::ReadOnly,
        Decision::TimedOut => Failure::TimedOut,
        Decision::NoSchema => Failure::NoSchema,
        Decision::SlotMoved => Failure::NotOwner {
            slots: refusal
                .message
                .strip_prefix(NOT_OWNER)
                .unwrap_or(&refusal.message)
                .to_owned(),
            told: refusal
                .detail
                .as_deref()
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(0),
        },
        Decision::Conflict => Failure::Conflict,
        Decision::DataRefused => Failure::DataRefused,
        Decision::KeyTaken
        | Decision::StaleStatements
        | Decision::ConditionFailed
        | Decision::Replayed
        | Decision::NoSuchPrepared
        | Decision::Other => Failure::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerError;

    fn refusal(code: &str, message: &str, detail: Option<&str>) -> WireError {
        WireError::from(ServerError {
            code: code.into(),
            message: message.into(),
            detail: detail.map(Into::into),
            ..Default::default()
        })
    }

    #[test]
    fn a_refusal_is_classified_by_its_sqlstate_whatever_its_language() {
        // German, as a server with lc_messages = de_DE words them.
        let cases = [
            (
                "57014",
                "storniere Anfrage wegen Zeitüberschreitung der Anweisung",
                Failure::TimedOut,
            ),
            (
                "42P01",
                "Relation »records« existiert nicht",
                Failure::NoSchema,
            ),
            (
                "25006",
                "kann INSERT nicht in einer Read-only-Transaktion ausführen",
                Failure::ReadOnly,
            ),
            ("22P02", "ungültige Eingabesyntax", Failure::Refused),
            (
                "40P01",
                "Verklemmung (Deadlock) entdeckt",
                Failure::Conflict,
            ),
            ("55P03", "konnte Sperre nicht setzen", Failure::Conflict),
            (
                "54000",
                "Indexzeilengröße überschreitet Maximum",
                Failure::DataRefused,
            ),
        ];
        for (code, message, expected) in cases {
            assert_eq!(classify(&refusal(code, message, None)), expected, "{code}");
        }
        let down = classify(&refusal("57P01", "Verbindung wird abgebrochen", None));
        assert!(matches!(down, Failure::Down(m) if m.starts_with("57P01")));
    }

    #[test]
    fn the_shards_refusal_names_its_slots_and_the_version_it_goes_by() {
        let refused = refusal("SG001", "this shard does not own slot 17", Some("42"));
        assert_eq!(
            classify(&refused),
            Failure::NotOwner {
                slots: "17".into(),
                told: 42
            }
        );
        // Worded otherwise, it is still the shard's refusal.
        let refused = refusal("SG001", "Slot 17 gehört nicht hierher", Some("7"));
        assert!(matches!(
            classify(&refused),
            Failure::NotOwner { told: 7, .. }
        ));
    }

    #[test]
    fn failures_that_are_not_refusals_go_by_their_kind() {
        let lost = WireError::Io(std::io::ErrorKind::UnexpectedEof.into());
        assert!(matches!(classify(&lost), Failure::Down(m) if m.contains("connection lost")));
        let tls = WireError::Tls("unknown issuer".into());
        assert!(matches!(classify(&tls), Failure::Down(_)));
        let undecodable = WireError::Undecodable("infinity".into());
        assert_eq!(
            classify(&undecodable),
            Failure::Undecodable("infinity".into())
        );
    }
}
