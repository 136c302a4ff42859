//! What became of every span that ended while recording: exported, dropped because the
//! queue was full, or lost with an export that failed (the collector down or refusing).
//! `/metrics` shows the counts.
//!
//! The SDK's batch processor keeps its own drop count to itself, so the queue is bounded
//! here, in front of it ([`Bounded`]), at the size its own queue has: a span that finds
//! `capacity` spans waiting is dropped and counted before the processor sees it, so the
//! processor's queue is never the one that overflows. A span leaves the count when the
//! batch it is in reaches the exporter ([`Counted`]), which counts the batch's outcome.
//! Nothing here waits: a full queue costs the request one atomic operation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

/// The counts, shared by the request path, the export thread and `/metrics`.
#[derive(Debug, Default)]
pub struct SpanLedger {
    /// Spans handed to the batch processor and not yet to the exporter.
    waiting: AtomicUsize,
    exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_export_failed: AtomicU64,
}

/// The counts at one moment, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanCounts {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans dropped because `capacity` spans were already waiting.
    pub dropped_queue_full: u64,
    /// Spans of batches whose export failed.
    pub dropped_export_failed: u64,
}

impl SpanLedger {
    /// Takes a place in the queue, or counts a drop when all `capacity` are taken.
    fn admit(&self, capacity: usize) -> bool {
        let taken = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            });
        if taken.is_err() {
            self.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        }
        taken.is_ok()
    }

    /// `spans` left the queue for the exporter.
    fn leave(&self, spans: usize) {
        let _ = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(spans))
            });
    }

    fn exported(&self, spans: usize) {
        self.exported.fetch_add(spans as u64, Ordering::Relaxed);
    }

    fn failed(&self, spans: usize) {
        self.dropped_export_failed
            .fetch_add(spans as u64, Ordering::Relaxed);
    }

    pub fn counts(&self) -> SpanCounts {
        SpanCounts {
            exported: self.exported.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_export_failed: self.dropped_export_failed.load(Ordering::Relaxed),
        }
    }
}

/// A span processor (the SDK's batch processor) behind a queue bound of `capacity`.
#[derive(Debug)]
pub struct Bounded<P> {
    pub inner: P,
    pub ledger: Arc<SpanLedger>,
    pub capacity: usize,
}

impl<P: SpanProcessor> SpanProcessor for Bounded<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.ledger.admit(self.capacity) {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An exporter whose batches are counted: out of the queue, then exported or lost.
#[derive(Debug)]
pub struct Counted<E> {
    pub inner: E,
    pub ledger: Arc<SpanLedger>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        self.ledger.leave(spans);
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.ledger.exported(spans),
            Err(error) => {
                self.ledger.failed(spans);
                tracing::debug!(spans, %error, "span export failed");
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_until_a_batch_leaves() {
        let ledger = SpanLedger::default();
        assert!(ledger.admit(2));
        assert!(ledger.admit(2));
        assert!(!ledger.admit(2), "a third span finds the queue full");
        assert_eq!(ledger.counts().dropped_queue_full, 1);
        ledger.leave(2);
        assert!(ledger.admit(2), "room again once the batch left");
        ledger.exported(2);
        ledger.failed(1);
        assert_eq!(
            ledger.counts(),
            SpanCounts {
                exported: 2,
                dropped_queue_full: 1,
                dropped_export_failed: 1,
            }
        );
        ledger.leave(5);
        assert!(ledger.admit(1), "the count never goes below zero");
    }
}
