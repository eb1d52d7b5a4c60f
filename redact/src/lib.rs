//! Redaction shared by the services' logger and the alert messages: what must never be
//! written where people or indices can read it.
//!
//! - [`mask_pans`]: card numbers (PANs) keep only their last four digits, whatever digit
//!   script they are written in (Persian and Arabic-Indic digits are everyday input in Iran),
//!   however they are spaced (spaces, dots, dashes, invisible marks, up to
//!   [`MAX_SEPARATOR_RUN`] of them between two digits), touching letters or not, and
//!   percent-encoded or not (paths are logged as the client sent them).
//! - [`mask_credentials`]: credentials inside free text (`Bearer ...`, `password=...`,
//!   `Authorization: ...`, a password in a URL) become [`REDACTED`].
//!
//! It is a crate of its own because two programs need the same rules: the services (through
//! `service-kit`, which the shipper must not depend on: it carries axum and the services'
//! HTTP plumbing) and the alerting that runs inside the shipper, whose messages copy
//! `error.message` from log documents.

mod credentials;
mod digits;
mod pan;

pub use credentials::mask_credentials;
pub use digits::{decimal_value, is_separator};
pub use pan::{contains_pan, longest_digit_run, luhn_valid, mask_card_number, mask_pans};

use std::borrow::Cow;

/// What replaces a credential.
pub const REDACTED: &str = "[REDACTED]";

/// Shortest and longest card numbers (ISO/IEC 7812).
pub const MIN_PAN_DIGITS: usize = 13;
/// See [`MIN_PAN_DIGITS`].
pub const MAX_PAN_DIGITS: usize = 19;

/// Most separator characters between two digits of one number: enough for `4111 - 1111`
/// or a double space, few enough that numbers in a sentence are not read as one.
pub const MAX_SEPARATOR_RUN: usize = 3;

/// Both masks: card numbers, then credentials.
pub fn mask_secrets(text: &str) -> Cow<'_, str> {
    match mask_pans(text) {
        Cow::Borrowed(text) => mask_credentials(text),
        Cow::Owned(masked) => match mask_credentials(&masked) {
            Cow::Borrowed(_) => Cow::Owned(masked),
            Cow::Owned(both) => Cow::Owned(both),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_masks_apply_to_one_text() {
        let text = "card 4111111111111111 refused, upstream said Authorization: Bearer abc.def";
        let masked = mask_secrets(text);
        assert_eq!(
            masked,
            "card ************1111 refused, upstream said Authorization: [REDACTED]"
        );
        assert!(matches!(mask_secrets("nothing here"), Cow::Borrowed(_)));
    }
}
