//! Redaction: what must never reach a log line.
//!
//! Applied by the JSON formatter to every value it writes, so that no handler can forget:
//! - card numbers are masked to their last four digits, in whatever digit script, spacing or
//!   percent-encoding they were written ([`mask_pans`]), and credentials inside free text
//!   (`Bearer ...`, `password=...`, `Authorization: ...`) are replaced by [`REDACTED`]
//!   ([`mask_credentials`]); both rules live in the `didban-redact` crate, which the
//!   alert messages use too;
//! - values of fields whose names say they hold credentials (`authorization`, `cookie`,
//!   `password`, ...) are replaced by [`REDACTED`] whatever they hold.

pub use ::redact::{
    contains_pan, decimal_value, is_separator, luhn_valid, mask_card_number, mask_credentials,
    mask_pans, mask_secrets, REDACTED,
};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
