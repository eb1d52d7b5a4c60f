//! The normalised view of a text that card-number detection works on: each character (or
//! percent-encoded character) is a digit with its value, a separator, or anything else.
//!
//! Percent-decoding is hand-written here because the view must keep, for every decoded
//! character, the byte range it came from (so a masked digit replaces exactly its `%34`);
//! the `percent-encoding` crate decodes to bytes without positions.

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;

/// What a character is to the card-number detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A decimal digit of any script, with its value.
    Digit(u8),
    /// May stand between two digits of one number.
    Separator,
    /// Ends a number.
    Other,
}

/// One character of the text: `text[start..end]` (several bytes when percent-encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) kind: Kind,
}

fn general_category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

/// The value of a decimal digit of any script (`'7'`, `'۷'` Persian, `'٧'` Arabic-Indic,
/// `'７'` fullwidth, ...), `None` for anything else (including `'½'` or `'²'`, which are
/// numbers but not digits).
///
/// Unicode encodes every set of decimal digits as ten consecutive code points from zero to
/// nine, and a maximal block of decimal digits is a sequence of such sets (the mathematical
/// digits are five in a row), so the value is the distance from the block's start, modulo
/// ten. Blocks are at most 50 long: bounded work per character.
pub fn decimal_value(c: char) -> Option<u8> {
    if c.is_ascii() {
        return c.is_ascii_digit().then(|| c as u8 - b'0');
    }
    if general_category(c) != GeneralCategory::DecimalNumber {
        return None;
    }
    let code = u32::from(c);
    let mut zero = code;
    while let Some(previous) = zero.checked_sub(1).and_then(char::from_u32) {
        if general_category(previous) != GeneralCategory::DecimalNumber {
            break;
        }
        zero -= 1;
    }
    u8::try_from((code - zero) % 10).ok()
}

/// Whether `c` may stand between the digits of a number someone typed: white space of any
/// kind, dashes of any kind, invisible format characters (zero-width joiners and
/// non-joiners, direction marks: Persian text is full of them), and the dots and digit-group
/// separators people write (`.`, `·`, `•`, Arabic `٫` and `٬`). Not commas, colons or
/// slashes: lists, times and dates would be read as one long number.
pub fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return matches!(
            c,
            ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '-' | '.' | '_'
        );
    }
    if c.is_whitespace() {
        return true;
    }
    if matches!(
        c,
        '\u{00b7}'
            | '\u{066b}'
            | '\u{066c}'
            | '\u{2022}'
            | '\u{2024}'
            | '\u{2027}'
            | '\u{2219}'
            | '\u{30fb}'
            | '\u{ff0e}'
            | '\u{ff65}'
    ) {
        return true;
    }
    matches!(
        general_category(c),
        GeneralCategory::DashPunctuation
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::Format
    )
}

fn kind_of(c: char) -> Kind {
    match decimal_value(c) {
        Some(v) => Kind::Digit(v),
        None if is_separator(c) => Kind::Separator,
        None => Kind::Other,
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte of a `%XX` escape at `at`.
fn escaped_byte(bytes: &[u8], at: usize) -> Option<u8> {
    match bytes.get(at..at + 3) {
        Some([b'%', h, l]) => Some(hex(*h)? << 4 | hex(*l)?),
        _ => None,
    }
}

/// The character encoded by the `%XX` escapes starting at `at` (one to four escapes: a
/// character's UTF-8 bytes), and the length of its encoding.
fn percent_decoded(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let lead = escaped_byte(bytes, at)?;
    let len = match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let mut utf8 = [lead, 0, 0, 0];
    for (i, slot) in utf8.iter_mut().enumerate().take(len).skip(1) {
        *slot = escaped_byte(bytes, at + 3 * i)?;
    }
    let c = std::str::from_utf8(&utf8[..len]).ok()?.chars().next()?;
    Some((c, 3 * len))
}

/// Whether `text` can hold `at_least` digits in one run at all, judged from its bytes alone
/// with no allocation: an ASCII digit, a `%` escape and a non-ASCII character may each be a
/// digit, ASCII separators may stand between them, anything else ends the run. It
/// overestimates (a non-ASCII letter counts as a possible digit), never underestimates, so
/// only texts that pass go on to the normalised view; ordinary messages, whose numbers are
/// short or apart, stop here.
pub(crate) fn may_hold_digits(text: &str, at_least: usize) -> bool {
    let bytes = text.as_bytes();
    let mut digits = 0usize;
    let mut separators = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (possible_digit, len) = match b {
            b'0'..=b'9' => (true, 1),
            b'%' => (true, 3),
            0x80..=0xff => (true, utf8_len(b)),
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'-' | b'.' | b'_' => (false, 1),
            _ => {
                digits = 0;
                separators = 0;
                i += 1;
                continue;
            }
        };
        if possible_digit {
            if separators > crate::MAX_SEPARATOR_RUN {
                digits = 0;
            }
            digits += 1;
            separators = 0;
            if digits >= at_least {
                return true;
            }
        } else {
            separators += 1;
        }
        i += len;
    }
    false
}

/// Length of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    }
}

/// The normalised view of `text`, in order.
pub(crate) fn units(text: &str) -> Vec<Unit> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (kind, len) = if b.is_ascii_digit() {
            (Kind::Digit(b - b'0'), 1)
        } else if b == b'%' {
            match percent_decoded(bytes, i) {
                Some((c, len)) => (kind_of(c), len),
                None => (Kind::Other, 1),
            }
        } else if b.is_ascii() {
            (kind_of(char::from(b)), 1)
        } else {
            match text[i..].chars().next() {
                Some(c) => (kind_of(c), c.len_utf8()),
                None => (Kind::Other, 1),
            }
        };
        out.push(Unit {
            start: i,
            end: i + len,
            kind,
        });
        i += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script_have_their_value() {
        for (text, expected) in [
            ("0123456789", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("۰۱۲۳۴۵۶۷۸۹", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("٠١٢٣٤٥٦٧٨٩", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("０１２３４５６７８９", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("०१२३४५६७८९", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("𝟶𝟷𝟸𝟹𝟺𝟻𝟼𝟽𝟾𝟿", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ] {
            let values: Vec<u8> = text.chars().filter_map(decimal_value).collect();
            assert_eq!(values, expected, "{text}");
        }
        for c in ['½', '²', 'Ⅻ', 'a', '-', '٫'] {
            assert_eq!(decimal_value(c), None, "{c}");
        }
    }

    #[test]
    fn every_block_of_decimal_digits_is_whole_sets_of_ten() {
        // What `decimal_value` relies on, checked over every code point.
        let mut run = 0u32;
        for code in 0..=0x10ffffu32 {
            let digit = char::from_u32(code)
                .is_some_and(|c| general_category(c) == GeneralCategory::DecimalNumber);
            if digit {
                run += 1;
            } else {
                assert_eq!(run % 10, 0, "a block of decimal digits ends at {code:#x}");
                run = 0;
            }
        }
    }

    #[test]
    fn separators_are_spaces_dashes_dots_and_invisible_marks_not_commas() {
        for c in [
            ' ', '.', '-', '_', '\u{a0}', '\u{200c}', '\u{200f}', '\u{2013}', '٬', '·',
        ] {
            assert!(is_separator(c), "{c:?}");
        }
        for c in [',', ':', '/', 'a', '5', '*'] {
            assert!(!is_separator(c), "{c:?}");
        }
    }

    #[test]
    fn percent_escapes_are_one_unit_each_with_the_decoded_kind() {
        let units = units("%34%DB%B1%20x%zz");
        let kinds: Vec<Kind> = units.iter().map(|u| u.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Digit(4),
                Kind::Digit(1),
                Kind::Separator,
                Kind::Other,
                Kind::Other,
                Kind::Other,
                Kind::Other
            ]
        );
        assert_eq!((units[1].start, units[1].end), (3, 9));
    }

    #[test]
    fn short_ascii_text_is_ruled_out_without_looking_further() {
        assert!(!may_hold_digits("GET /loans/12 200", 13));
        assert!(!may_hold_digits(
            "loan of 500000000 exceeds the customer's available credit of 30000000",
            13
        ));
        assert!(may_hold_digits("4111 - 1111.1111%201111", 13));
        assert!(!may_hold_digits("4111    1111 1111 1111", 13));
        assert!(may_hold_digits("۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱", 13));
    }
}
