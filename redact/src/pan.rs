//! Card numbers: found on the normalised view of a text (see `digits`), masked in the
//! original.
//!
//! A number is a run of digits in which two neighbouring digits are at most
//! [`MAX_SEPARATOR_RUN`] separators apart; the separators split it into groups. A card
//! number is any stretch of a run that starts where a group starts, ends where a group ends,
//! holds 13 to 19 digits and passes the Luhn check. The Luhn check keeps ordinary long
//! numbers (amounts, counts) readable while catching card numbers; a false positive only
//! hides a few digits, which is the safe direction. Digits are only ever replaced by `*`,
//! which ends a run, so the visible last four digits start a new group and are checked
//! again with what follows them.
//!
//! UUIDs (`8-4-4-4-12` hex digits) are identifiers, skipped whole: their digit groups
//! often pass the check, and masking them would break the ids people search logs by.
//!
//! Every step is one pass, and each candidate start tries at most seven lengths of at most
//! 19 digits: linear in the length of the text, whatever it holds.

use std::borrow::Cow;

use crate::digits::{self, Kind, Unit};
use crate::{MAX_PAN_DIGITS, MAX_SEPARATOR_RUN, MIN_PAN_DIGITS};

const VISIBLE_DIGITS: usize = 4;
const UUID_LEN: usize = 36;

/// Whether the digit values `digits` (each `0..=9`) pass the Luhn checksum of card numbers.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || digits.iter().any(|d| *d > 9) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d);
            match (i % 2 == 1, v * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => v,
            }
        })
        .sum();
    sum % 10 == 0
}

/// One digit of a run: its unit and value, and whether a separator precedes it in the run.
#[derive(Debug, Clone, Copy)]
struct Digit {
    unit: usize,
    value: u8,
    group_start: bool,
}

/// Byte ranges of the UUIDs in `text`.
fn uuid_ranges(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i + UUID_LEN <= bytes.len() {
        let starts_token = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let ends_token = bytes
            .get(i + UUID_LEN)
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        let shaped = bytes[i..i + UUID_LEN].iter().enumerate().all(|(k, b)| {
            if matches!(k, 8 | 13 | 18 | 23) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
        if starts_token && ends_token && shaped {
            ranges.push((i, i + UUID_LEN));
            i += UUID_LEN;
        } else {
            i += 1;
        }
    }
    ranges
}

/// The normalised view with UUIDs turned into non-digits.
fn units_outside_uuids(text: &str) -> Vec<Unit> {
    let mut units = digits::units(text);
    let uuids = uuid_ranges(text);
    if !uuids.is_empty() {
        let mut next = uuids.iter().peekable();
        for unit in &mut units {
            while next.peek().is_some_and(|(_, end)| *end <= unit.start) {
                next.next();
            }
            if next
                .peek()
                .is_some_and(|(start, end)| *start <= unit.start && unit.end <= *end)
            {
                unit.kind = Kind::Other;
            }
        }
    }
    units
}

/// Calls `each` with every run of digits in `units`.
fn for_each_run(units: &[Unit], mut each: impl FnMut(&[Digit])) {
    let mut run: Vec<Digit> = Vec::new();
    let mut separators = 0usize;
    for (index, unit) in units.iter().enumerate() {
        match unit.kind {
            Kind::Digit(value) => {
                let joined = !run.is_empty() && separators <= MAX_SEPARATOR_RUN;
                if !joined && !run.is_empty() {
                    each(&run);
                    run.clear();
                }
                run.push(Digit {
                    unit: index,
                    value,
                    group_start: !joined || separators > 0,
                });
                separators = 0;
            }
            Kind::Separator => separators += 1,
            Kind::Other => {
                if !run.is_empty() {
                    each(&run);
                    run.clear();
                }
                separators = 0;
            }
        }
    }
    if !run.is_empty() {
        each(&run);
    }
}

/// Whether a group of `run` ends after `digit[end - 1]`.
fn ends_group(run: &[Digit], end: usize) -> bool {
    end == run.len() || run[end].group_start
}

/// The longest card number starting at `start` of `run`: its end.
fn card_number_from(run: &[Digit], start: usize, values: &mut Vec<u8>) -> Option<usize> {
    values.clear();
    let mut found = None;
    for end in start + 1..=run.len().min(start + MAX_PAN_DIGITS) {
        values.push(run[end - 1].value);
        if end - start >= MIN_PAN_DIGITS && ends_group(run, end) && luhn_valid(values) {
            found = Some(end);
        }
    }
    found
}

/// Masks every card number in `text`, keeping its last four digits and every separator as
/// written. Returns the text borrowed when it holds none, the common case, which costs one
/// pass over the bytes when the text holds fewer than 13 possible digits.
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    if !digits::may_hold_digits(text, MIN_PAN_DIGITS) {
        return Cow::Borrowed(text);
    }
    let units = units_outside_uuids(text);
    let mut masked = vec![false; units.len()];
    let mut any = false;
    let mut values = Vec::with_capacity(MAX_PAN_DIGITS);
    for_each_run(&units, |run| {
        let mut start = 0;
        // Where the visible digits of the last masked number begin: after the `*`s, a
        // group starts there.
        let mut restart = None;
        while start + MIN_PAN_DIGITS <= run.len() {
            if !(run[start].group_start || restart == Some(start)) {
                start += 1;
                continue;
            }
            match card_number_from(run, start, &mut values) {
                Some(end) => {
                    for digit in &run[start..end - VISIBLE_DIGITS] {
                        masked[digit.unit] = true;
                    }
                    any = true;
                    start = end - VISIBLE_DIGITS;
                    restart = Some(start);
                }
                None => start += 1,
            }
        }
    });
    if !any {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (unit, _) in units.iter().zip(&masked).filter(|(_, m)| **m) {
        out.push_str(&text[copied..unit.start]);
        out.push('*');
        copied = unit.end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Whether `text` holds a card number that [`mask_pans`] would mask. Checks every stretch
/// of every run by brute force, independently of the masking loop, so tests can hold the
/// masked output to it.
pub fn contains_pan(text: &str) -> bool {
    let units = units_outside_uuids(text);
    let mut found = false;
    for_each_run(&units, |run| {
        for start in (0..run.len()).filter(|&s| run[s].group_start) {
            for end in start + MIN_PAN_DIGITS..=run.len().min(start + MAX_PAN_DIGITS) {
                let values: Vec<u8> = run[start..end].iter().map(|d| d.value).collect();
                if ends_group(run, end) && luhn_valid(&values) {
                    found = true;
                }
            }
        }
    });
    found
}

/// The number of digits of the longest run in `text` (UUIDs included), whatever its
/// checksum: what an identifier may hold without looking like a card number.
pub fn longest_digit_run(text: &str) -> usize {
    let mut longest = 0;
    for_each_run(&digits::units(text), |run| longest = longest.max(run.len()));
    longest
}

/// A card number for storage or display: only its last four digits, as ASCII, whatever
/// digits and grouping it was written with (`************1111`).
pub fn mask_card_number(card: &str) -> String {
    let digits: Vec<u8> = card.chars().filter_map(crate::decimal_value).collect();
    let keep = digits.len().saturating_sub(VISIBLE_DIGITS);
    let mut masked = "*".repeat(keep);
    masked.extend(digits[keep..].iter().map(|d| char::from(b'0' + d)));
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascii(digits: &str) -> Vec<u8> {
        digits.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn luhn_accepts_test_card_numbers_and_rejects_altered_ones() {
        assert!(luhn_valid(&ascii("4111111111111111")));
        assert!(luhn_valid(&ascii("5500005555555559")));
        assert!(luhn_valid(&ascii("378282246310005")));
        assert!(!luhn_valid(&ascii("4111111111111112")));
        assert!(!luhn_valid(&[]));
        assert!(!luhn_valid(&[4, 1, 11]));
    }

    #[test]
    fn plain_and_grouped_pans_keep_only_their_last_four_digits_and_separators() {
        assert_eq!(
            mask_pans("card 4111111111111111 ok"),
            "card ************1111 ok"
        );
        assert_eq!(
            mask_pans("pay with 4111 1111 1111 1111."),
            "pay with **** **** **** 1111."
        );
        assert_eq!(mask_pans("5500-0055-5555-5559"), "****-****-****-5559");
    }

    #[test]
    fn the_forms_that_got_past_the_old_masking_are_masked() {
        for (text, masked) in [
            ("4111.1111.1111.1111", "****.****.****.1111"),
            ("4111  1111  1111  1111", "****  ****  ****  1111"),
            ("4111 - 1111 - 1111 - 1111", "**** - **** - **** - 1111"),
            ("card4111111111111111x", "card************1111x"),
            ("۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۱۱۱", "**** **** **** ۱۱۱۱"),
            ("٤١١١-١١١١-١١١١-١١١١", "****-****-****-١١١١"),
            (
                "۴۱۱۱\u{200c}۱۱۱۱\u{200c}۱۱۱۱\u{200c}۱۱۱۱",
                "****\u{200c}****\u{200c}****\u{200c}۱۱۱۱",
            ),
            (
                "/accounts/4111%201111%201111%201111",
                "/accounts/****%20****%20****%201111",
            ),
            (
                "/accounts/%34%31%31%31111111111111",
                "/accounts/************1111",
            ),
            (
                "/a/%DB%B4%DB%B1%DB%B1%DB%B1111111111111",
                "/a/************1111",
            ),
            ("mixed ۴111١١١١1111 ۱۱۱۱", "mixed ************ ۱۱۱۱"),
        ] {
            let out = mask_pans(text);
            assert_eq!(out, masked, "{text}");
            assert!(!contains_pan(&out), "{out}");
        }
    }

    #[test]
    fn pan_followed_or_preceded_by_other_numbers_is_still_masked() {
        assert_eq!(
            mask_pans("GET /accounts/4111111111111111 404"),
            "GET /accounts/************1111 404"
        );
        assert_eq!(
            mask_pans("status 200 4111 1111 1111 1111 ok"),
            "status 200 **** **** **** 1111 ok"
        );
    }

    #[test]
    fn numbers_that_fail_luhn_or_have_the_wrong_length_are_left_alone() {
        let text = "order 4111111111111112 amount 123456789012 id 12345678901234567890123";
        assert!(matches!(mask_pans(text), Cow::Borrowed(_)));
        assert!(matches!(
            mask_pans("GET / 200 in 12345 ns"),
            Cow::Borrowed(_)
        ));
        // Numbers far apart are not one number.
        assert_eq!(
            mask_pans("4111 1111    1111 1111"),
            "4111 1111    1111 1111"
        );
        // Commas, colons and slashes end a number.
        assert_eq!(mask_pans("4111,1111,1111,1111"), "4111,1111,1111,1111");
    }

    #[test]
    fn uuids_are_identifiers_not_card_numbers() {
        // Real UUID v7s whose digit groups happen to pass the Luhn check.
        for id in [
            "01a2161d-6e3d-7559-9420-79288042fffe",
            "01a2161d-5011-7691-8479-84330f6406bf",
            "loan 01a2161d-5011-7691-8479-84330f6406bf opened",
        ] {
            assert_eq!(mask_pans(id), id);
        }
    }

    #[test]
    fn the_last_four_digits_are_checked_again_with_what_follows() {
        // Masking the first number leaves `1111`, which with the next group is the card
        // number 1111 0000 0000 0004: it is masked too.
        let out = mask_pans("4111111111111111 000000000004");
        assert_eq!(out, "**************** ********0004");
        assert!(!contains_pan(&out), "{out}");
        assert!(contains_pan("************1111 000000000004"));
        assert_eq!(
            mask_pans("4111111111111111 and 378282246310005"),
            "************1111 and ***********0005"
        );
    }

    #[test]
    fn non_ascii_text_around_a_pan_survives_masking() {
        assert_eq!(
            mask_pans("کارت 4111111111111111 پرداخت"),
            "کارت ************1111 پرداخت"
        );
    }

    #[test]
    fn longest_run_counts_digits_across_separators_of_any_script() {
        assert_eq!(longest_digit_run("abc-12.34-5x"), 5);
        assert_eq!(longest_digit_run("4111-1111-1111-1111"), 16);
        assert_eq!(longest_digit_run("۴۱۱۱۱۱۱۱۱۱۱۱۱"), 13);
        assert_eq!(longest_digit_run("0192f0c1-7b3e-7c2a-9a7e-2f1d4f1e8a9b"), 4);
    }

    #[test]
    fn a_card_number_is_stored_as_its_last_four_ascii_digits() {
        assert_eq!(mask_card_number("4111 1111 1111 1111"), "************1111");
        assert_eq!(mask_card_number("۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۲۳۴"), "************1234");
        assert_eq!(mask_card_number("12"), "12");
    }
}
