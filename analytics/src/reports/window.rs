//! Parsing of the report window a client asks for (`?window=1m30s`, `?timeRange=60000`).
//!
//! Parse, don't validate: the gateway turns the query string into a [`Duration`] once
//! and maps a [`WindowError`] to a 400; reports never see a malformed window.

use std::time::Duration;

use thiserror::Error;

use crate::recording::config::DEFAULT_MAX_WINDOW;

/// Why a window string was refused; every message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    /// Nothing was given where a window was expected.
    #[error("window is empty; give a duration such as 60s, 5m or 1m30s")]
    Empty,
    /// The text is not a sequence of `<number><unit>` parts.
    #[error("window {input:?} is not a duration: {reason}")]
    Invalid {
        /// The text as received.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A window of zero length covers no requests.
    #[error("window {input:?} is zero; it must be at least 1ms")]
    Zero {
        /// The text as received.
        input: String,
    },
    /// Longer than the recorder keeps data for.
    #[error("window {input:?} is longer than the {max_secs}s this gateway keeps")]
    TooLong {
        /// The text as received.
        input: String,
        /// The configured maximum, in seconds.
        max_secs: u64,
    },
}

/// Window of a report when the client names none: the minute a dashboard shows.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// The window a metrics request asks for: `?window=` if given, else the ancestor's
/// `?timeRange=<ms>`, else [`DEFAULT_WINDOW`]; bounded by `max`. One function so
/// every caller agrees on which parameter wins.
pub fn window_from_query(
    window: Option<&str>,
    time_range_ms: Option<&str>,
    max: Duration,
) -> Result<Duration, WindowError> {
    match (window, time_range_ms) {
        (Some(window), _) => parse_window_within(window, max),
        (None, Some(millis)) => parse_time_range_ms(millis, max),
        (None, None) => Ok(DEFAULT_WINDOW.min(max)),
    }
}

/// Parses a window bounded by [`DEFAULT_MAX_WINDOW`]; see [`parse_window_within`].
pub fn parse_window(input: &str) -> Result<Duration, WindowError> {
    parse_window_within(input, DEFAULT_MAX_WINDOW)
}

/// Parses `"60s"`, `"10s"`, `"5m"`, `"1m30s"`, `"500ms"`, `"1h"` or a bare number of
/// seconds (`"60"`), refusing zero and anything longer than `max`.
///
/// Parts may be combined in any order and are summed; units are `h`, `m`, `s`, `ms`.
pub fn parse_window_within(input: &str, max: Duration) -> Result<Duration, WindowError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(WindowError::Empty);
    }
    let invalid = |reason| WindowError::Invalid {
        input: input.to_owned(),
        reason,
    };
    let total = if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs = text
            .parse::<u64>()
            .map_err(|_| invalid("number too large"))?;
        Duration::from_secs(secs)
    } else {
        sum_parts(text).map_err(invalid)?
    };
    bound(input, total, max)
}

/// Parses the ancestor's `?timeRange=<milliseconds>`, with the same bounds as
/// [`parse_window_within`].
pub fn parse_time_range_ms(input: &str, max: Duration) -> Result<Duration, WindowError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(WindowError::Empty);
    }
    let millis = text.parse::<u64>().map_err(|_| WindowError::Invalid {
        input: input.to_owned(),
        reason: "timeRange must be a whole number of milliseconds",
    })?;
    bound(input, Duration::from_millis(millis), max)
}

fn bound(input: &str, window: Duration, max: Duration) -> Result<Duration, WindowError> {
    if window.is_zero() {
        return Err(WindowError::Zero {
            input: input.to_owned(),
        });
    }
    if window > max {
        return Err(WindowError::TooLong {
            input: input.to_owned(),
            max_secs: max.as_secs(),
        });
    }
    Ok(window)
}

/// Sums `<digits><unit>` parts; the error is the reason shown to the client.
fn sum_parts(text: &str) -> Result<Duration, &'static str> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number before each unit");
        }
        let (number, tail) = rest.split_at(digits);
        let value = number.parse::<u64>().map_err(|_| "number too large")?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let part = match unit {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "" => return Err("a number inside a duration needs a unit (h, m, s or ms)"),
            _ => return Err("unknown unit; use h, m, s or ms"),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or("number too large")?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_window("60s"), Ok(secs(60)));
        assert_eq!(parse_window("10s"), Ok(secs(10)));
        assert_eq!(parse_window("5m"), Ok(secs(300)));
        assert_eq!(parse_window("1m30s"), Ok(secs(90)));
        assert_eq!(parse_window("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_window(" 60 "), Ok(secs(60)));
        assert_eq!(parse_window("15m"), Ok(secs(900)));
    }

    #[test]
    fn refuses_malformed_input_with_a_reason() {
        assert_eq!(parse_window(""), Err(WindowError::Empty));
        assert!(matches!(
            parse_window("1x"),
            Err(WindowError::Invalid { reason, .. }) if reason.contains("unknown unit")
        ));
        assert!(matches!(
            parse_window("1m30"),
            Err(WindowError::Invalid { .. })
        ));
        assert!(matches!(
            parse_window("-5s"),
            Err(WindowError::Invalid { .. })
        ));
        assert!(matches!(
            parse_window("99999999999999999999s"),
            Err(WindowError::Invalid { .. })
        ));
    }

    #[test]
    fn bounds_the_window() {
        assert!(matches!(parse_window("0s"), Err(WindowError::Zero { .. })));
        assert_eq!(
            parse_window("16m"),
            Err(WindowError::TooLong {
                input: "16m".into(),
                max_secs: 900
            })
        );
        assert_eq!(parse_window_within("2h", secs(7200)), Ok(secs(7200)));
    }

    #[test]
    fn time_range_is_milliseconds() {
        assert_eq!(parse_time_range_ms("60000", secs(900)), Ok(secs(60)));
        assert!(matches!(
            parse_time_range_ms("60s", secs(900)),
            Err(WindowError::Invalid { .. })
        ));
        assert!(matches!(
            parse_time_range_ms("3600000", secs(900)),
            Err(WindowError::TooLong { .. })
        ));
    }

    #[test]
    fn window_wins_over_time_range_and_both_default_to_a_minute() {
        let max = secs(900);
        assert_eq!(
            window_from_query(Some("10s"), Some("5000"), max),
            Ok(secs(10))
        );
        assert_eq!(window_from_query(None, Some("5000"), max), Ok(secs(5)));
        assert_eq!(window_from_query(None, None, max), Ok(DEFAULT_WINDOW));
        assert_eq!(window_from_query(None, None, secs(30)), Ok(secs(30)));
        assert!(window_from_query(Some("x"), None, max).is_err());
    }

    #[test]
    fn errors_read_as_sentences_with_the_input() {
        let error = parse_window("16m").err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("window \"16m\" is longer than the 900s this gateway keeps")
        );
    }
}
