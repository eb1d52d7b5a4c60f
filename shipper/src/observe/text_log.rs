//! The shipper's own text log: one event, one line, whatever the values in it.
//!
//! Its lines quote what others control: file names in the watched directories, a document's
//! `service.name`, the reasons Elasticsearch (or a proxy) gives. tracing-subscriber's default
//! field formatter writes a message and `%`-formatted fields as they are, so a newline in a file
//! name would start a line of the attacker's choosing ("... ERROR Elasticsearch is down"). Here
//! the default formatter writes through an escaping layer: control characters, line and
//! paragraph separators and the bidirectional-text controls are written as Rust escapes (`\n`,
//! `\u{1b}`, `\u{202e}`), everything else as it is. One place for every call site; the JSON
//! format escapes by itself.

use std::fmt;

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::FormatFields;

/// tracing-subscriber's [`DefaultFields`], with every value escaped (see the module doc).
#[derive(Debug, Default)]
pub struct EscapingFields {
    inner: DefaultFields,
}

impl<'writer> FormatFields<'writer> for EscapingFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut escaping = Escaping { out: &mut writer };
        self.inner.format_fields(Writer::new(&mut escaping), fields)
    }
}

/// Writes to `out` with the characters of [`needs_escape`] escaped.
struct Escaping<'a, W: fmt::Write> {
    out: &'a mut W,
}

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            self.out.write_str(&rest[..at])?;
            match c {
                '\n' | '\r' | '\t' => write!(self.out, "{}", c.escape_default())?,
                _ => write!(self.out, "{}", c.escape_unicode())?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.out.write_str(rest)
    }
}

/// Characters that could end a line, forge one, or make a line read differently than it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn logged(event: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(EscapingFields::default())
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_newline_in_a_value_does_not_start_a_line() {
        let name = "app.log\n2026-12-02T10:00:00Z ERROR forged: Elasticsearch is down";
        let out = logged(
            || tracing::info!(path = %name, service = "pay\rment", "new file {name}; reading"),
        );
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.contains(r"new file app.log\n2026-12-02T10:00:00Z ERROR forged"),
            "{out}"
        );
        assert!(out.contains(r"path=app.log\n2026"), "{out}");
        assert!(out.contains(r#"service="pay\rment""#), "{out}");
    }

    #[test]
    fn escapes_and_bidi_controls_are_shown_not_obeyed() {
        let out = logged(|| tracing::warn!("a\u{1b}[31mred\u{202e}txt\u{2028}b\tc"));
        // tracing-subscriber itself writes ESC as `\x1b`; the rest is ours.
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(out.contains(r"red\u{202e}txt\u{2028}b\tc"), "{out}");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn plain_text_and_other_scripts_are_written_as_they_are() {
        let out = logged(|| tracing::info!(service = "پرداخت", "ok: «{}»", "نام فایل"));
        assert!(out.contains("ok: «نام فایل»"), "{out}");
        assert!(out.contains("service=\"پرداخت\""), "{out}");
    }
}
