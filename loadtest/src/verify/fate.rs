//! A write's fate from the gateway's answer: acknowledged, failed cleanly, or unknown.
//!
//! Pure: the status, the problem type and the body's `version`/`created` go in, a
//! [`Fate`] comes out. The rule errs towards "unknown": calling a write that did commit
//! "failed" would later report it as applied though refused, a false alarm, while
//! calling a refused write "unknown" only makes the check a little less sharp.
//!
//! | answer                                                         | fate         |
//! |----------------------------------------------------------------|--------------|
//! | 200 / 201 with `version`                                       | acknowledged |
//! | any 4xx                                                        | failed       |
//! | 503 refused before the write ran (see [`REFUSED_BEFORE_SENDING`]) | failed    |
//! | 503 `may-have-committed` and `shard-unavailable` (the connection may have died after the send), 503 `cache-not-told` and 504 `not-replicated` (committed, not acknowledged), 504 `timeout`, 500, no answer | unknown |

use super::ledger::Fate;

/// Problem types (`urn:shardgate:problem:<slug>`) of 503s that mean nothing committed:
/// the gateway was not serving (draining, API keys not loaded), no connection was
/// free, the shard refused the write inside its transaction (a slot it no longer owns,
/// a read-only primary), or the shard has no schema.
pub const REFUSED_BEFORE_SENDING: [&str; 6] = [
    "draining",
    "keys-unavailable",
    "shard-saturated",
    "slot-not-owned",
    "primary-read-only",
    "schema-missing",
];

/// What came back for a write, reduced to what decides its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// 0 when no response arrived.
    pub status: u16,
    /// The problem type's slug (`shard-saturated`), for problem+json answers.
    pub problem: Option<&'a str>,
    /// The body's `version`, for 2xx answers.
    pub version: Option<i64>,
    /// The body's `created`, for 2xx answers.
    pub created: Option<bool>,
    /// Why no response arrived, or the problem's detail.
    pub detail: &'a str,
}

/// The fate of a write that got `answer`.
pub fn classify(answer: Answer<'_>) -> Fate {
    let problem = answer.problem.unwrap_or("").to_owned();
    match (answer.status, answer.version) {
        (0, _) => Fate::Unknown {
            why: format!("no answer: {}", answer.detail),
        },
        (200..=299, Some(version)) => Fate::Acknowledged {
            version,
            created: answer.created.unwrap_or(false),
        },
        (200..=299, None) => Fate::Unknown {
            why: format!("{} without a version", answer.status),
        },
        (400..=499, _) => Fate::Failed {
            status: answer.status,
            problem,
        },
        (503, _) if REFUSED_BEFORE_SENDING.contains(&problem.as_str()) => Fate::Failed {
            status: 503,
            problem,
        },
        (status, _) => Fate::Unknown {
            why: format!("{status} {problem}: {}", answer.detail),
        },
    }
}

/// `shard-saturated` from `urn:shardgate:problem:shard-saturated`.
pub fn problem_slug(kind: &str) -> &str {
    kind.rsplit(':').next().unwrap_or(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, problem: Option<&'static str>, version: Option<i64>) -> Answer<'static> {
        Answer {
            status,
            problem,
            version,
            created: Some(true),
            detail: "detail",
        }
    }

    #[test]
    fn a_2xx_with_a_version_is_acknowledged() {
        assert_eq!(
            classify(answer(201, None, Some(17))),
            Fate::Acknowledged {
                version: 17,
                created: true
            }
        );
        assert!(matches!(
            classify(answer(200, None, None)),
            Fate::Unknown { .. }
        ));
    }

    #[test]
    fn client_errors_and_refusals_before_sending_failed_cleanly() {
        for (status, problem) in [
            (422, Some("invalid-record")),
            (429, Some("rate-limited")),
            (400, None),
            (503, Some("shard-saturated")),
            (503, Some("slot-not-owned")),
            (503, Some("primary-read-only")),
            (503, Some("draining")),
        ] {
            let fate = classify(answer(status, problem, None));
            assert!(
                matches!(fate, Fate::Failed { status: s, .. } if s == status),
                "{status} {problem:?}: {fate:?}"
            );
        }
    }

    #[test]
    fn answers_that_may_follow_a_commit_are_unknown() {
        for (status, problem) in [
            (0, None),
            (503, Some("may-have-committed")),
            (503, Some("shard-unavailable")),
            (503, Some("cache-not-told")),
            (504, Some("timeout")),
            (504, Some("not-replicated")),
            (500, Some("internal")),
            (502, None),
        ] {
            let fate = classify(answer(status, problem, None));
            assert!(
                matches!(fate, Fate::Unknown { .. }),
                "{status} {problem:?}: {fate:?}"
            );
            assert!(fate.may_be_applied());
        }
    }

    #[test]
    fn the_slug_is_the_last_part_of_the_type() {
        assert_eq!(
            problem_slug("urn:shardgate:problem:shard-saturated"),
            "shard-saturated"
        );
        assert_eq!(problem_slug("plain"), "plain");
    }
}
