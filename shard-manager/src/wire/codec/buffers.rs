//! A connection's buffers come back to their first size after a large message: a pooled
//! connection lives for hours, and a buffer that once held a 16 MiB bulk group or a
//! page of large rows would otherwise keep that much for as long as the connection
//! does, on every pooled connection that ever met one.
//!
//! The rule, applied when an exchange ends cleanly: a buffer that holds nothing and
//! grew past [`SHRINK_ABOVE`] during the exchange is replaced by a fresh one of
//! [`START_BYTES`]. "Grew" is the largest capacity seen while the exchange ran, not the
//! capacity at its end: the read buffer hands each message out as a slice of its own
//! allocation, so after the last one its remaining capacity may look small while it
//! still holds the whole allocation.

use bytes::BytesMut;

/// What a connection's buffers start with.
pub(in crate::wire) const START_BYTES: usize = 8 * 1024;

/// Past this, a buffer is replaced once its exchange ended.
pub(in crate::wire) const SHRINK_ABOVE: usize = 64 * 1024;

/// Whether a buffer holding `len` bytes that grew to `peak` should be replaced.
pub(in crate::wire) fn should_shrink(len: usize, peak: usize) -> bool {
    len == 0 && peak > SHRINK_ABOVE
}

/// Replaces `buf` with a fresh [`START_BYTES`] buffer when [`should_shrink`] says so.
/// Returns whether it did.
pub(in crate::wire) fn settle(buf: &mut BytesMut, peak: usize) -> bool {
    let peak = peak.max(buf.capacity());
    if !should_shrink(buf.len(), peak) {
        return false;
    }
    *buf = BytesMut::with_capacity(START_BYTES);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn only_an_empty_buffer_that_grew_past_the_mark_is_replaced() {
        assert!(!should_shrink(0, SHRINK_ABOVE));
        assert!(should_shrink(0, SHRINK_ABOVE + 1));
        // Unread bytes are never thrown away.
        assert!(!should_shrink(1, 16 << 20));
        assert!(!should_shrink(0, START_BYTES));
    }

    #[test]
    fn a_buffer_that_held_a_large_message_comes_back_to_its_first_size() {
        let mut buf = BytesMut::with_capacity(START_BYTES);
        buf.put_bytes(b'x', 1 << 20);
        let peak = buf.capacity();
        // The message is handed out as a slice of the buffer's allocation, then dropped.
        drop(buf.split_to(1 << 20).freeze());
        assert!(buf.is_empty());
        assert!(settle(&mut buf, peak));
        assert_eq!(buf.capacity(), START_BYTES);
        // A small buffer keeps its allocation.
        let mut small = BytesMut::with_capacity(START_BYTES);
        small.put_bytes(b'y', 100);
        small.clear();
        let peak = small.capacity();
        assert!(!settle(&mut small, peak));
        // And one still holding unread bytes keeps them.
        let mut unread = BytesMut::with_capacity(START_BYTES);
        unread.put_bytes(b'z', 1 << 20);
        let peak = unread.capacity();
        assert!(!settle(&mut unread, peak));
        assert_eq!(unread.len(), 1 << 20);
    }
}
