//! `@timestamp` rendering: RFC 3339 with microseconds and the configured zone's offset.
//!
//! Written by hand rather than through `chrono`'s `format`, which re-parses its format
//! string on every call: this runs once per log line on the request path. The offset comes
//! from the IANA database in `chrono-tz`, so a future change of Tehran's rules is a
//! dependency update, not a code change.

use chrono::{DateTime, Datelike, Offset, Timelike, Utc};
use chrono_tz::Tz;

/// Appends `now` in `tz` as `2025-01-31T14:05:09.123456+03:30`.
pub fn write_rfc3339(buf: &mut Vec<u8>, now: DateTime<Utc>, tz: Tz) {
    let local = now.with_timezone(&tz);
    let offset_secs = local.offset().fix().local_minus_utc();
    let year = local.year();
    if (0..=9999).contains(&year) {
        push_digits(buf, year as u32, 4);
    } else {
        // RFC 3339 has no room for such years; fall back to chrono's own rendering.
        buf.extend_from_slice(local.to_rfc3339().as_bytes());
        return;
    }
    buf.push(b'-');
    push_digits(buf, local.month(), 2);
    buf.push(b'-');
    push_digits(buf, local.day(), 2);
    buf.push(b'T');
    push_digits(buf, local.hour(), 2);
    buf.push(b':');
    push_digits(buf, local.minute(), 2);
    buf.push(b':');
    push_digits(buf, local.second(), 2);
    buf.push(b'.');
    // A leap second shows as nanosecond >= 1e9; clamp it into the last microsecond.
    push_digits(buf, (local.nanosecond() / 1_000).min(999_999), 6);
    if offset_secs == 0 && tz == Tz::UTC {
        buf.push(b'Z');
        return;
    }
    buf.push(if offset_secs < 0 { b'-' } else { b'+' });
    let abs = offset_secs.unsigned_abs();
    push_digits(buf, abs / 3600, 2);
    buf.push(b':');
    push_digits(buf, (abs % 3600) / 60, 2);
}

fn push_digits(buf: &mut Vec<u8>, mut value: u32, width: usize) {
    let start = buf.len();
    buf.resize(start + width, b'0');
    for slot in buf[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn render(now: DateTime<Utc>, tz: Tz) -> String {
        let mut buf = Vec::new();
        write_rfc3339(&mut buf, now, tz);
        String::from_utf8(buf).expect("ascii")
    }

    #[test]
    fn tehran_time_carries_the_plus_three_thirty_offset() {
        let now = Utc
            .with_ymd_and_hms(2025, 11, 26, 10, 0, 5)
            .single()
            .expect("valid date")
            + chrono::Duration::microseconds(42);
        assert_eq!(
            render(now, chrono_tz::Asia::Tehran),
            "2025-11-26T13:30:05.000042+03:30"
        );
    }

    #[test]
    fn output_parses_back_to_the_same_instant() {
        let now = Utc::now();
        for tz in [
            chrono_tz::Asia::Tehran,
            chrono_tz::America::St_Johns,
            Tz::UTC,
        ] {
            let text = render(now, tz);
            let parsed = DateTime::parse_from_rfc3339(&text).expect("rfc3339");
            assert_eq!(parsed.timestamp_micros(), now.timestamp_micros(), "{text}");
        }
    }

    #[test]
    fn negative_offsets_and_utc_are_rendered_per_rfc3339() {
        let now = Utc
            .with_ymd_and_hms(2025, 1, 2, 3, 4, 5)
            .single()
            .expect("valid date");
        assert_eq!(
            render(now, chrono_tz::America::St_Johns),
            "2025-01-01T23:34:05.000000-03:30"
        );
        assert_eq!(render(now, Tz::UTC), "2025-01-02T03:04:05.000000Z");
    }
}
