//! Exemplars of the latency histograms: per bucket of a series, the latest sampled
//! request that fell in it, named by its trace id, so a bucket seen in a dashboard is
//! one lookup away from a trace that shows it.
//!
//! Memory is fixed: a series that never saw a sampled request holds a null pointer; the
//! first one allocates its table of 17 slots (one per bucket, `+Inf` included) once, and
//! later ones overwrite a slot in place. The caller already holds its stripe's lock, so
//! offering an exemplar costs a store, and nothing at all for a request not sampled.

use crate::recording::latency::BUCKET_SLOTS;

/// A trace id as 16 bytes: parsed once from its 32 hex digits, so keeping one copies
/// bytes rather than allocating a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceId([u8; 16]);

impl TraceId {
    /// The id of 32 hex digits (either case); `None` for anything else, and for the
    /// all-zero id W3C Trace Context calls invalid.
    pub(crate) fn parse(hex: &str) -> Option<Self> {
        let digits = hex.as_bytes();
        if digits.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    /// The 32 lowercase hex digits of the id.
    pub(crate) fn hex(self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(32);
        for byte in self.0 {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        text
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// One sampled request: its trace, its latency and when it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exemplar {
    pub(crate) trace: TraceId,
    pub(crate) micros: u64,
    /// Wall-clock time it finished, in milliseconds since the Unix epoch.
    pub(crate) at_ms: i64,
}

/// The latest exemplar of each bucket of one histogram, allocated on the first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BucketExemplars(Option<Box<[Option<Exemplar>; BUCKET_SLOTS]>>);

impl BucketExemplars {
    /// Keeps `exemplar` as bucket `slot`'s, unless that bucket holds a later one.
    pub(crate) fn offer(&mut self, slot: usize, exemplar: Exemplar) {
        let table = self.0.get_or_insert_with(|| Box::new([None; BUCKET_SLOTS]));
        if let Some(kept) = table.get_mut(slot) {
            if kept.is_none_or(|k| k.at_ms <= exemplar.at_ms) {
                *kept = Some(exemplar);
            }
        }
    }

    /// Adds another stripe's exemplars: each bucket keeps the later of the two.
    pub(crate) fn merge(&mut self, other: &BucketExemplars) {
        let Some(theirs) = &other.0 else {
            return;
        };
        for (slot, exemplar) in theirs.iter().enumerate() {
            if let Some(exemplar) = exemplar {
                self.offer(slot, *exemplar);
            }
        }
    }

    /// Bucket `slot`'s exemplar, if a sampled request fell in it.
    pub(crate) fn get(&self, slot: usize) -> Option<Exemplar> {
        self.0
            .as_ref()
            .and_then(|table| table.get(slot).copied().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn exemplar(trace: &str, at_ms: i64) -> Exemplar {
        Exemplar {
            trace: TraceId::parse(trace).unwrap(),
            micros: 1_500,
            at_ms,
        }
    }

    #[test]
    fn trace_ids_round_trip_and_refuse_what_is_not_one() {
        assert_eq!(TraceId::parse(TRACE).unwrap().hex(), TRACE);
        assert_eq!(
            TraceId::parse(&TRACE.to_uppercase()).unwrap().hex(),
            TRACE,
            "upper case is read, lower case written"
        );
        for bad in [
            "",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e47366",
            "zbf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000",
        ] {
            assert_eq!(TraceId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_bucket_keeps_its_latest_exemplar_and_merges_keep_the_later() {
        let mut mine = BucketExemplars::default();
        assert_eq!(mine.get(3), None);
        mine.offer(3, exemplar(TRACE, 20));
        mine.offer(3, exemplar("0af7651916cd43dd8448eb211c80319c", 10));
        assert_eq!(
            mine.get(3),
            Some(exemplar(TRACE, 20)),
            "an older one is ignored"
        );
        assert_eq!(mine.get(4), None);

        let mut theirs = BucketExemplars::default();
        let later = exemplar("5b8aa5a2d2c872e8321cf37308d69df2", 30);
        theirs.offer(3, later);
        theirs.offer(16, later);
        mine.merge(&theirs);
        assert_eq!(mine.get(3), Some(later));
        assert_eq!(mine.get(16), Some(later), "the +Inf bucket has a slot");
        mine.offer(99, later);
        assert_eq!(mine.get(99), None, "no slot past +Inf");
    }
}
