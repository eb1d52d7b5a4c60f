//! Dates the way Elasticsearch reads them: the default date format
//! `strict_date_optional_time||epoch_millis` and date math (`now-30s`,
//! `now-1d/d`, `2026-11-26||+1h`), see the reference pages "date field type"
//! and "Date math" (docs/reference/elasticsearch/rest-apis/common-options.md).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

/// Parses `strict_date_optional_time`: `yyyy`, `yyyy-MM`, `yyyy-MM-dd`, then an
/// optional `T` time with optional fraction and optional zone (UTC if none).
pub fn parse_strict_date_optional_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    // Offsets without a colon (+0100) and other zone forms.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&dt));
        }
    }
    if let Some(h) = s
        .strip_suffix('Z')
        .and_then(|x| x.strip_suffix(":00").or(Some(x)))
    {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&format!("{h}:00"), "%Y-%m-%dT%H:%M:%S") {
            return Some(Utc.from_utc_datetime(&dt));
        }
    }
    let bytes = s.as_bytes();
    let all_digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    match bytes.len() {
        10 if bytes[4] == b'-' && bytes[7] == b'-' => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Utc.from_utc_datetime(&d)),
        7 if bytes[4] == b'-' && all_digits(&bytes[..4]) && all_digits(&bytes[5..]) => {
            NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| Utc.from_utc_datetime(&d))
        }
        4 if all_digits(bytes) => NaiveDate::parse_from_str(&format!("{s}-01-01"), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Utc.from_utc_datetime(&d)),
        _ => None,
    }
}

/// Does a string look like a date for dynamic `date_detection`? Elasticsearch's
/// default `dynamic_date_formats` are `strict_date_optional_time` and
/// `yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z`; a bare year is not detected because
/// detection requires at least `yyyy-MM-dd` in practice (a 4-digit string such
/// as "2026" stays a string).
pub fn looks_like_date(s: &str) -> bool {
    s.len() >= 10 && parse_strict_date_optional_time(s).is_some()
        || NaiveDate::parse_from_str(s.get(..10).unwrap_or(""), "%Y/%m/%d").is_ok()
}

/// Reads a date value from a document or query: a string in the default
/// format, or a number of epoch milliseconds (`epoch_millis`).
pub fn parse_date_value(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    match v {
        serde_json::Value::String(s) => parse_strict_date_optional_time(s).or_else(|| {
            s.parse::<i64>()
                .ok()
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        }),
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        _ => None,
    }
}

/// Evaluates date math: an anchor (`now` or a date followed by `||`), then
/// `+N<unit>` / `-N<unit>` / `/<unit>` (round down; `round_up` rounds to the
/// last millisecond of the unit as Elasticsearch does for `lte`/`gt`).
pub fn eval_date_math(expr: &str, now: DateTime<Utc>, round_up: bool) -> Option<DateTime<Utc>> {
    let (mut t, ops) = if let Some(rest) = expr.strip_prefix("now") {
        (now, rest)
    } else if let Some(pos) = expr.find("||") {
        (
            parse_strict_date_optional_time(&expr[..pos])?,
            &expr[pos + 2..],
        )
    } else {
        return parse_date_value(&serde_json::Value::String(expr.to_string()));
    };
    let b = ops.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let op = b[i];
        i += 1;
        match op {
            b'+' | b'-' => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: i64 = if start == i {
                    1
                } else {
                    ops[start..i].parse().ok()?
                };
                let unit = *b.get(i)?;
                i += 1;
                let n = if op == b'-' { -n } else { n };
                t = add_unit(t, n, unit)?;
            }
            b'/' => {
                let unit = *b.get(i)?;
                i += 1;
                t = round_down(t, unit)?;
                if round_up {
                    t = add_unit(t, 1, unit)? - Duration::milliseconds(1);
                }
            }
            _ => return None,
        }
    }
    Some(t)
}

fn add_unit(t: DateTime<Utc>, n: i64, unit: u8) -> Option<DateTime<Utc>> {
    Some(match unit {
        b'y' => {
            let months = chrono::Months::new(u32::try_from(n.unsigned_abs() * 12).ok()?);
            if n >= 0 {
                t.checked_add_months(months)?
            } else {
                t.checked_sub_months(months)?
            }
        }
        b'M' => {
            let months = chrono::Months::new(u32::try_from(n.unsigned_abs()).ok()?);
            if n >= 0 {
                t.checked_add_months(months)?
            } else {
                t.checked_sub_months(months)?
            }
        }
        b'w' => t + Duration::weeks(n),
        b'd' => t + Duration::days(n),
        b'h' | b'H' => t + Duration::hours(n),
        b'm' => t + Duration::minutes(n),
        b's' => t + Duration::seconds(n),
        _ => return None,
    })
}

fn round_down(t: DateTime<Utc>, unit: u8) -> Option<DateTime<Utc>> {
    let d = t.date_naive();
    let at = |nd: NaiveDate, h: u32, m: u32, s: u32| {
        nd.and_hms_opt(h, m, s).map(|x| Utc.from_utc_datetime(&x))
    };
    match unit {
        b'y' => at(NaiveDate::from_ymd_opt(d.year(), 1, 1)?, 0, 0, 0),
        b'M' => at(NaiveDate::from_ymd_opt(d.year(), d.month(), 1)?, 0, 0, 0),
        b'w' => at(
            d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            0,
            0,
            0,
        ),
        b'd' => at(d, 0, 0, 0),
        b'h' | b'H' => at(d, t.hour(), 0, 0),
        b'm' => at(d, t.hour(), t.minute(), 0),
        b's' => at(d, t.hour(), t.minute(), t.second()),
        _ => None,
    }
}

/// Parses a fixed interval (`30s`, `1m`, `1h`, `1d`, `500ms`) into milliseconds.
pub fn parse_fixed_interval(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..split].parse().ok()?;
    let mult = match &s[split..] {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    (n > 0).then_some(n * mult)
}

/// Formats like Elasticsearch's `strict_date_optional_time` output.
pub fn format_millis(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_strict_date_optional_time(s).unwrap()
    }

    #[test]
    fn strict_date_optional_time_accepts_its_documented_forms() {
        assert!(parse_strict_date_optional_time("2026-11-26").is_some());
        assert!(parse_strict_date_optional_time("2026-11-26T10:11:12Z").is_some());
        assert!(parse_strict_date_optional_time("2026-11-26T10:11:12.123456789Z").is_some());
        assert!(parse_strict_date_optional_time("2026-11-26T10:11:12+01:00").is_some());
        assert!(parse_strict_date_optional_time("2026-11-26T10:11:12").is_some());
        assert!(parse_strict_date_optional_time("not a date").is_none());
        assert!(parse_strict_date_optional_time("2026-13-01").is_none());
    }

    #[test]
    fn date_math_subtracts_and_rounds() {
        let now = utc("2026-11-26T10:11:12.500Z");
        assert_eq!(
            eval_date_math("now-30s", now, false),
            Some(utc("2026-11-26T10:10:42.500Z"))
        );
        assert_eq!(
            eval_date_math("now-1d/d", now, false),
            Some(utc("2026-11-25T00:00:00Z"))
        );
        assert_eq!(
            eval_date_math("now/d", now, true),
            Some(utc("2026-11-26T23:59:59.999Z"))
        );
        assert_eq!(
            eval_date_math("2026-11-26||+1h", now, false),
            Some(utc("2026-11-26T01:00:00Z"))
        );
        assert_eq!(eval_date_math("now-5q", now, false), None);
    }

    #[test]
    fn fixed_intervals_parse_to_millis() {
        assert_eq!(parse_fixed_interval("30s"), Some(30_000));
        assert_eq!(parse_fixed_interval("1h"), Some(3_600_000));
        assert_eq!(parse_fixed_interval("1M"), None);
    }
}
