//! Redaction: what must never reach a log line.
//!
//! Two rules, applied by the JSON formatter to every value it writes, so that no handler can
//! forget them:
//! - card numbers (PANs) are masked: any run of 13 to 19 digits, optionally grouped with
//!   single spaces or dashes, that passes the Luhn check keeps only its last four digits;
//! - values of fields whose names say they hold credentials (`authorization`, `cookie`,
//!   `password`, ...) are replaced by [`REDACTED`].
//!
//! The Luhn check keeps ordinary long numbers (ids, amounts) readable while catching real
//! card numbers; a false positive only hides a few digits, which is the safe direction.

use std::borrow::Cow;

/// Replacement for the value of a credential-bearing field.
pub const REDACTED: &str = "[REDACTED]";

const MIN_PAN_DIGITS: usize = 13;
const MAX_PAN_DIGITS: usize = 19;
const VISIBLE_DIGITS: usize = 4;

/// Field-name fragments that mark a value as a credential.
const SENSITIVE_NAME_PARTS: &[&str] = &[
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "token",
];

/// Whether a field with this name holds a credential and must not be logged.
pub fn is_sensitive_field(name: &str) -> bool {
    // Field names are short; lowercasing byte-wise avoids an allocation for the common case.
    SENSITIVE_NAME_PARTS.iter().any(|part| {
        name.as_bytes()
            .windows(part.len())
            .any(|w| w.eq_ignore_ascii_case(part.as_bytes()))
    })
}

/// Whether `digits` (ASCII digits only) passes the Luhn checksum used by card numbers.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// Masks every card number in `text`, keeping the last four digits and the separators.
///
/// Returns the input unchanged (borrowed) when it holds no card number, which is the
/// common case and costs one pass over the bytes.
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if bytes.iter().filter(|b| b.is_ascii_digit()).count() < MIN_PAN_DIGITS {
        return Cow::Borrowed(text);
    }
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run of digit groups joined by single spaces or dashes: `4111 1111 1111 1111 404`.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut end = i;
        loop {
            let start = end;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            groups.push((start, end));
            let joined = end + 1 < bytes.len()
                && matches!(bytes[end], b' ' | b'-')
                && bytes[end + 1].is_ascii_digit();
            if !joined {
                break;
            }
            end += 1;
        }
        // Any consecutive groups holding 13 to 19 digits that pass Luhn are a card number;
        // the run may carry other numbers before or after it (`/accounts/<pan> 404`). Digits
        // glued to a letter belong to an identifier (a UUID's `-7928 8042fffe`, a hex
        // hash), not to a card number written out.
        let glued = |at: Option<&u8>| at.is_some_and(|b| b.is_ascii_alphabetic());
        let mut g = 0;
        while g < groups.len() {
            let mut digits: Vec<u8> = Vec::with_capacity(MAX_PAN_DIGITS);
            let mut matched = None;
            for (h, &(start, stop)) in groups.iter().enumerate().skip(g) {
                digits.extend_from_slice(&bytes[start..stop]);
                if digits.len() > MAX_PAN_DIGITS {
                    break;
                }
                let before = groups[g].0.checked_sub(1).and_then(|k| bytes.get(k));
                let after = bytes.get(stop);
                if digits.len() >= MIN_PAN_DIGITS
                    && !glued(before)
                    && !glued(after)
                    && luhn_valid(&digits)
                {
                    matched = Some((h, digits.len()));
                }
            }
            match matched {
                Some((last, count)) => {
                    let buf = out.get_or_insert_with(|| bytes.to_vec());
                    let mut remaining = count;
                    for b in &mut buf[groups[g].0..groups[last].1] {
                        if b.is_ascii_digit() {
                            if remaining > VISIBLE_DIGITS {
                                *b = b'*';
                            }
                            remaining -= 1;
                        }
                    }
                    g = last + 1;
                }
                None => g += 1,
            }
        }
        i = end;
    }
    match out {
        // Only ASCII digits were replaced by ASCII '*', so the bytes are still UTF-8.
        Some(buf) => Cow::Owned(
            String::from_utf8(buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
        None => Cow::Borrowed(text),
    }
}

/// Masks a single card number for storage or display: `**** **** **** 1111` style, keeping
/// only the last four digits whatever the input grouping was.
pub fn mask_card_number(card: &str) -> String {
    let digits: Vec<char> = card.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().saturating_sub(VISIBLE_DIGITS);
    let mut masked = "*".repeat(keep);
    masked.extend(&digits[keep..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_card_numbers_and_rejects_altered_ones() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"5500005555555559"));
        assert!(luhn_valid(b"378282246310005"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn plain_pan_keeps_only_last_four_digits() {
        assert_eq!(
            mask_pans("card 4111111111111111 ok"),
            "card ************1111 ok"
        );
    }

    #[test]
    fn grouped_pan_is_masked_and_keeps_its_separators() {
        assert_eq!(
            mask_pans("pay with 4111 1111 1111 1111."),
            "pay with **** **** **** 1111."
        );
        assert_eq!(mask_pans("5500-0055-5555-5559"), "****-****-****-5559");
    }

    #[test]
    fn pan_inside_json_or_paths_is_masked() {
        let s = r#"{"card_number":"4111111111111111"}"#;
        assert_eq!(mask_pans(s), r#"{"card_number":"************1111"}"#);
        assert_eq!(
            mask_pans("/accounts/4111111111111111/x"),
            "/accounts/************1111/x"
        );
    }

    #[test]
    fn numbers_that_fail_luhn_or_have_the_wrong_length_are_left_alone() {
        let text = "order 4111111111111112 amount 123456789012 id 12345678901234567890123";
        assert!(matches!(mask_pans(text), Cow::Borrowed(_)));
        assert_eq!(mask_pans(text), text);
    }

    #[test]
    fn text_without_enough_digits_is_borrowed_not_copied() {
        assert!(matches!(
            mask_pans("GET / 200 in 12345 ns"),
            Cow::Borrowed(_)
        ));
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
    fn digits_inside_identifiers_are_not_card_numbers() {
        // Real UUID v7s whose digit groups happen to pass the Luhn check.
        for id in [
            "01a2161d-6e3d-7559-9420-79288042fffe",
            "01a2161d-5011-7691-8479-84330f6406bf",
            "sha-4111111111111111abc",
        ] {
            assert_eq!(mask_pans(id), id);
        }
        assert_eq!(
            mask_pans("card:4111111111111111."),
            "card:************1111."
        );
    }

    #[test]
    fn two_pans_in_one_text_are_both_masked() {
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
    fn credential_field_names_are_recognised_case_insensitively() {
        for name in [
            "Authorization",
            "http.request.headers.cookie",
            "password",
            "api_token",
        ] {
            assert!(is_sensitive_field(name), "{name}");
        }
        for name in ["transaction.id", "url.path", "message", "payment.amount"] {
            assert!(!is_sensitive_field(name), "{name}");
        }
    }

    #[test]
    fn card_number_is_masked_to_last_four_whatever_its_grouping() {
        assert_eq!(mask_card_number("4111 1111 1111 1111"), "************1111");
        assert_eq!(mask_card_number("12"), "12");
    }
}
