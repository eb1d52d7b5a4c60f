//! Document ids derived from where a line came from.
//!
//! `_id` = the file identity (16 hex digits) followed by the line's byte offset in hex. The
//! same line always gets the same id, so a batch re-sent after a crash, a timeout or a lost
//! response is answered 409 (already there) instead of being indexed twice. Two different
//! lines never share one: within a file their offsets differ, across files their identities.
//! Content hashing (Fluent Bit's `generate_id`) would instead merge two identical lines.

use std::io::Write;

use crate::input::identity::FileKey;

/// Appends the id of the line at `offset` in the file `key` to `out`.
pub(crate) fn write_id(out: &mut Vec<u8>, key: FileKey, offset: u64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{key:016x}{offset:x}");
}

#[cfg(test)]
pub(crate) fn id(key: FileKey, offset: u64) -> String {
    let mut out = Vec::with_capacity(32);
    write_id(&mut out, key, offset);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(id(0xabc, 0x10), "0000000000000abc10");
        assert_eq!(id(0xabc, 0x10), id(0xabc, 0x10));
        assert_ne!(id(0xabc, 0x10), id(0xabc, 0x11));
        assert_ne!(id(0xabc, 0x10), id(0xabd, 0x10));
    }

    #[test]
    fn the_fixed_width_key_keeps_ids_unambiguous() {
        // Without a fixed width, key 0x1 offset 0x23 and key 0x12 offset 0x3 would collide.
        assert_ne!(id(0x1, 0x23), id(0x12, 0x3));
    }
}
