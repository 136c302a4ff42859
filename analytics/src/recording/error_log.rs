//! The most recent failed requests, in a ring of fixed capacity.
//!
//! Only failures take this lock, so it costs nothing on the success path; during an
//! error storm the oldest events are overwritten and memory stays fixed.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::recording::sample::ErrorClass;

/// Longest message kept, in bytes: enough for a database error's first line, too
/// short for a request body to leak through.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256;

/// One failed request, as `GET /api/analytics/errors` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorEvent {
    /// When the request finished.
    pub at: DateTime<Utc>,
    /// Route pattern (`"other"` past the endpoint cap).
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Shard the request was routed to, if any.
    pub shard: Option<u32>,
    /// Status code sent to the client.
    pub status: u16,
    /// Cause class.
    pub class: ErrorClass,
    /// The caller's message, cut to 256 bytes with control characters replaced.
    pub message: String,
    /// The trace the request was recorded under (32 hex digits), when the gateway
    /// exports traces and sampled it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace_id: Option<String>,
}

/// A bounded ring of [`ErrorEvent`]s.
pub(crate) struct ErrorLog {
    events: Mutex<VecDeque<ErrorEvent>>,
    capacity: usize,
}

impl ErrorLog {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            events: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// Appends an event, dropping the oldest when full.
    pub(crate) fn push(&self, event: ErrorEvent) {
        let mut events = self.events.lock();
        if events.len() == self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Up to `limit` events, newest first.
    pub(crate) fn recent(&self, limit: usize) -> Vec<ErrorEvent> {
        let events = self.events.lock();
        events.iter().rev().take(limit).cloned().collect()
    }
}

/// `message` made safe to show: control characters (newlines, escapes) become
/// spaces and the text is cut at a character boundary.
pub(crate) fn sanitize(message: &str) -> String {
    let mut cut = message.len().min(MAX_MESSAGE_BYTES);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut clean: String = message[..cut]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cut < message.len() {
        clean.push('…');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: u16) -> ErrorEvent {
        ErrorEvent {
            at: DateTime::<Utc>::UNIX_EPOCH,
            endpoint: "/api/write".into(),
            method: "POST".into(),
            shard: Some(1),
            status,
            class: ErrorClass::Client,
            message: String::new(),
            trace_id: None,
        }
    }

    #[test]
    fn the_ring_is_bounded_and_lists_newest_first() {
        let log = ErrorLog::new(3);
        for status in 400..405 {
            log.push(event(status));
        }
        let statuses: Vec<u16> = log.recent(10).iter().map(|e| e.status).collect();
        assert_eq!(statuses, [404, 403, 402]);
        let statuses: Vec<u16> = log.recent(2).iter().map(|e| e.status).collect();
        assert_eq!(statuses, [404, 403]);
        assert!(log.recent(0).is_empty());
    }

    #[test]
    fn messages_are_cut_and_cleaned() {
        assert_eq!(sanitize("line one\nline two"), "line one line two");
        let long = "é".repeat(200);
        let clean = sanitize(&long);
        assert_eq!(clean.chars().count(), 129);
        assert!(clean.ends_with('…'));
        assert_eq!(sanitize("short"), "short");
    }
}
