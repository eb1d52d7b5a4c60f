//! Credentials inside free text: an upstream's error body quoted in an error message, a
//! request dumped by a debug line, a connection string.
//!
//! Four shapes, in one regular expression (the `regex` crate runs in linear time, whatever
//! the text):
//! - a header line: `Authorization: ...`, `Cookie: ...`, `X-Api-Key: ...`, the value up to
//!   the end of the line or a quote;
//! - an authentication scheme and its credentials: `Bearer abc.def`, `Basic dXNlcjpw`;
//! - a key that names a credential and its value: `password=...`, `"token": "..."`,
//!   `client_secret: ...`, `api_key=...`;
//! - the password of a URL: `postgres://user:secret@host`.
//!
//! The value is replaced by [`REDACTED`](crate::REDACTED); the name stays, so the reader
//! still knows what was there.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::{Captures, Regex};

use crate::REDACTED;

static CREDENTIAL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)",
        r#"(?P<header>(?-u:\b)(?:proxy-authorization|authorization|set-cookie|cookie|x-api-key|x-auth-token)[ \t]*:[ \t]*)(?P<header_value>[^\r\n"]+)"#,
        r"|(?P<scheme>(?-u:\b)(?:bearer|basic|digest|negotiate)[ \t]+)(?P<scheme_value>[A-Za-z0-9\-._~+/]+=*)",
        r#"|(?P<key>(?-u:\b)[a-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|credentials?|authorization|cookie)["']?[ \t]*[:=][ \t]*)(?P<key_value>"[^"]*"|'[^']*'|[^\s"'&]+)"#,
        r"|(?P<userinfo>(?-u:\b)[a-z][a-z0-9+.\-]*://[^\s:/@]+:)(?P<password>[^\s/@]+)@",
    ))
    .ok()
});

/// Words without which none of the shapes above can match: texts without any (nearly all
/// log values) skip the expression.
const TRIGGERS: [&str; 12] = [
    "auth",
    "cookie",
    "key",
    "bearer",
    "basic",
    "digest",
    "negotiate",
    "pass",
    "pwd",
    "secret",
    "token",
    "credential",
];

static TRIGGER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(TRIGGERS)
        .ok()
});

/// Masks the credentials in `text` (see the module documentation); borrowed when there are
/// none.
pub fn mask_credentials(text: &str) -> Cow<'_, str> {
    if let Some(trigger) = TRIGGER.as_ref() {
        // A URL's password needs both a scheme and an `@`.
        let userinfo = text.contains("://") && text.contains('@');
        if !userinfo && !trigger.is_match(text) {
            return Cow::Borrowed(text);
        }
    }
    let Some(credential) = CREDENTIAL.as_ref() else {
        // The expression is a constant that the tests compile: unreachable, and should it
        // ever be reached, hiding the whole text is the safe answer.
        return Cow::Borrowed(REDACTED);
    };
    credential.replace_all(text, |c: &Captures<'_>| {
        let (name, value, after) =
            if let (Some(n), Some(v)) = (c.name("header"), c.name("header_value")) {
                (n.as_str(), v.as_str(), "")
            } else if let (Some(n), Some(v)) = (c.name("scheme"), c.name("scheme_value")) {
                (n.as_str(), v.as_str(), "")
            } else if let (Some(n), Some(v)) = (c.name("key"), c.name("key_value")) {
                (n.as_str(), v.as_str(), "")
            } else if let (Some(n), Some(v)) = (c.name("userinfo"), c.name("password")) {
                (n.as_str(), v.as_str(), "@")
            } else {
                return c[0].to_owned();
            };
        let quote = match value.chars().next() {
            Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => Some(q),
            _ => None,
        };
        match quote {
            Some(q) => format!("{name}{q}{REDACTED}{q}{after}"),
            None => format!("{name}{REDACTED}{after}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_and_its_triggers_compile() {
        assert!(CREDENTIAL.is_some());
        assert!(TRIGGER.is_some());
    }

    #[test]
    fn credentials_in_free_text_are_masked_and_their_names_kept() {
        for (text, masked) in [
            (
                "upstream answered 401: Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig",
                "upstream answered 401: Authorization: [REDACTED]",
            ),
            (
                "retrying with bearer abc123== now",
                "retrying with bearer [REDACTED] now",
            ),
            ("Basic dXNlcjpwYXNz", "Basic [REDACTED]"),
            (
                "login failed for user=bob&password=hunter2&x=1",
                "login failed for user=bob&password=[REDACTED]&x=1",
            ),
            (
                r#"body {"user":"bob","password":"hunter 2","ok":false}"#,
                r#"body {"user":"bob","password":"[REDACTED]","ok":false}"#,
            ),
            (
                "Config { client_secret: 's3cr3t', api_key: k-123 }",
                "Config { client_secret: '[REDACTED]', api_key: [REDACTED] }",
            ),
            // An unquoted value ends at white space, a quote or `&` only: a password may hold
            // any other character.
            ("access_token=abc.def;", "access_token=[REDACTED]"),
            (
                "connecting to postgres://app:pa55w0rd@db:5432/x",
                "connecting to postgres://app:[REDACTED]@db:5432/x",
            ),
            ("Cookie: session=abc; theme=dark", "Cookie: [REDACTED]"),
            ("X-Api-Key:k3y", "X-Api-Key:[REDACTED]"),
        ] {
            assert_eq!(mask_credentials(text), masked, "{text}");
        }
    }

    #[test]
    fn text_without_credentials_is_borrowed() {
        for text in [
            "calling card processor: connection refused",
            "loan of 500000000 exceeds the customer's available credit",
            "error.type InvalidToken",
            "the password reset page",
        ] {
            assert!(matches!(mask_credentials(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
