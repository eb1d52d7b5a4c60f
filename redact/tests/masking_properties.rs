//! Property tests: card numbers written in any of the ways people (and URLs) write them,
//! inside any text, never survive masking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use proptest::prelude::*;
use redact::{contains_pan, mask_credentials, mask_pans, REDACTED};

/// Zero of a few digit scripts: ASCII, Arabic-Indic, Persian, Devanagari, fullwidth,
/// mathematical bold.
const ZEROS: [char; 6] = [
    '0',
    '\u{660}',
    '\u{6f0}',
    '\u{966}',
    '\u{ff10}',
    '\u{1d7ce}',
];

/// Separators people put between digit groups.
const SEPARATORS: [char; 10] = [
    ' ', '-', '.', '_', '\u{a0}', '\u{200c}', '\u{2013}', '\u{66c}', '\u{3000}', '\t',
];

/// Text around a number: letters of two scripts, punctuation, never a digit.
const CONTEXT: &str = "abcxyzQRS کارتپرداخت:/,;\"'()[]{}=?&#!*";

fn luhn_check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d);
            if i % 2 == 0 {
                let doubled = v * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                v
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A Luhn-valid card number of 13 to 19 digits.
fn card_number() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..10, 12..=18).prop_map(|mut body| {
        let check = luhn_check_digit(&body);
        body.push(check);
        body
    })
}

fn percent_encoded(c: char, upper: bool) -> String {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf)
        .bytes()
        .map(|b| {
            if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// How one card number is written.
#[derive(Debug, Clone)]
struct Writing {
    digits: Vec<u8>,
    /// Script of each digit (index into ZEROS).
    scripts: Vec<usize>,
    /// After each digit: how many separators follow (0 to 3) and which.
    separators: Vec<Vec<usize>>,
    /// Whether each character is percent-encoded (and in upper case hex).
    encoded: Vec<(bool, bool)>,
}

fn writing() -> impl Strategy<Value = Writing> {
    card_number().prop_flat_map(|digits| {
        let n = digits.len();
        (
            Just(digits),
            prop::collection::vec(0..ZEROS.len(), n),
            prop::collection::vec(
                prop_oneof![
                    3 => Just(Vec::new()),
                    2 => prop::collection::vec(0..SEPARATORS.len(), 1..=3),
                ],
                n,
            ),
            prop::collection::vec((prop::bool::weighted(0.2), any::<bool>()), n * 4),
        )
            .prop_map(|(digits, scripts, separators, encoded)| Writing {
                digits,
                scripts,
                separators,
                encoded,
            })
    })
}

impl Writing {
    fn render(&self) -> String {
        let mut chars = Vec::new();
        for (i, d) in self.digits.iter().enumerate() {
            let zero = u32::from(ZEROS[self.scripts[i]]);
            chars.push(char::from_u32(zero + u32::from(*d)).unwrap());
            if i + 1 < self.digits.len() {
                chars.extend(self.separators[i].iter().map(|s| SEPARATORS[*s]));
            }
        }
        chars
            .into_iter()
            .enumerate()
            .map(|(i, c)| match self.encoded.get(i) {
                Some((true, upper)) => percent_encoded(c, *upper),
                _ => c.to_string(),
            })
            .collect()
    }
}

fn context() -> impl Strategy<Value = String> {
    let chars: Vec<char> = CONTEXT.chars().collect();
    prop::collection::vec(prop::sample::select(chars), 0..12).prop_map(|c| c.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_card_number_survives_whatever_its_script_spacing_or_encoding(
        cards in prop::collection::vec((context(), writing()), 1..4),
        tail in context(),
    ) {
        let mut text = String::new();
        for (before, card) in &cards {
            text.push_str(before);
            // Numbers next to each other are one longer number; keep them apart.
            text.push('/');
            text.push_str(&card.render());
            text.push('/');
        }
        text.push_str(&tail);
        prop_assert!(contains_pan(&text), "the generator wrote no card number: {text:?}");
        let masked = mask_pans(&text);
        prop_assert!(!contains_pan(&masked), "{text:?} was masked to {masked:?}");
    }

    #[test]
    fn masking_any_text_leaves_no_card_number_in_it(
        text in "[0-9 .\\-x%۱۲۴]{0,80}",
    ) {
        let masked = mask_pans(&text);
        prop_assert!(!contains_pan(&masked), "{text:?} was masked to {masked:?}");
    }

    #[test]
    fn a_password_in_a_query_or_a_json_body_never_survives(
        secret in "[A-Za-z0-9!$%()*+./:<=>?@^_~-]{6,24}",
        json in any::<bool>(),
    ) {
        let text = if json {
            format!("upstream said {{\"user\":\"bob\",\"password\":\"{secret}\"}}")
        } else {
            format!("GET /login?user=bob&password={secret}&next=/")
        };
        let masked = mask_credentials(&text);
        prop_assert!(masked.contains(REDACTED), "{masked}");
        prop_assert!(!masked.contains(&secret), "{text:?} was masked to {masked:?}");
    }
}
