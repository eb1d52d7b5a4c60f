//! What an alert says, and how each channel spells it.
//!
//! One [`Notification`] per state change (firing, resolved) or reminder. It answers the
//! questions of whoever reads it on a phone: what (the rule), where (the service or monitor),
//! since when (in the operators' time zone), how many, the last error and its transaction
//! id, and a Kibana link to look further. The renderers escape for their medium: HTML for
//! Telegram, Slack's mrkdwn (`&`, `<`, `>`: so a `<!channel>` or a disguised link
//! `<http://x|Kibana>` in a service name stays text), plain text for e-mail, JSON for
//! webhooks.
//!
//! Every value that comes from a log document or a check (service name, error, transaction
//! id, URL) goes through [`field`] first, for every channel: control characters (CR, LF,
//! ...) become spaces, so a field cannot add a line of its own (a fake `Kibana:` link), and
//! card numbers and credentials are masked (`redact`, the rules the services' logger
//! applies), so an upstream's error body quoted in `error.message` does not carry a token
//! to a chat.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::channels::ChannelKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub(crate) fn label(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// Which kind of rule raised the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSource {
    /// A count of documents on the log stream.
    Logs,
    /// A Heartbeat monitor down.
    Uptime,
    /// A Heartbeat monitor slow.
    Latency,
    /// The shipper itself: Elasticsearch unreachable, shipping stalled, dead letters,
    /// Heartbeat silent.
    Shipper,
}

impl AlertSource {
    pub(crate) fn label(self) -> &'static str {
        match self {
            AlertSource::Logs => "logs",
            AlertSource::Uptime => "uptime",
            AlertSource::Latency => "latency",
            AlertSource::Shipper => "shipper",
        }
    }

    /// The inverse of [`AlertSource::label`] (for the saved alert state).
    pub(crate) fn from_label(label: &str) -> Option<AlertSource> {
        [
            AlertSource::Logs,
            AlertSource::Uptime,
            AlertSource::Latency,
            AlertSource::Shipper,
        ]
        .into_iter()
        .find(|s| s.label() == label)
    }
}

/// The most recent document (or check) behind an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastError {
    pub message: Option<String>,
    pub error_type: Option<String>,
    pub transaction_id: Option<String>,
    /// Its own timestamp, as written.
    pub timestamp: Option<String>,
}

/// One message about one alert instance.
#[derive(Debug, Clone)]
pub struct Notification {
    pub status: AlertStatus,
    /// A repeat of a firing alert (the reminder interval passed).
    pub reminder: bool,
    pub rule: String,
    pub source: AlertSource,
    /// `service` or `monitor`.
    pub group_field: &'static str,
    /// The service or monitor this instance is about.
    pub group: String,
    /// The rule in words: `≥ 5 documents (log.category SystemError) within 1m`.
    pub condition: String,
    /// When the alert started firing.
    pub since: DateTime<Utc>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Documents in the window (log rules) or consecutive down checks (uptime).
    pub count: u64,
    /// Everything counted since the alert started firing.
    pub total: u64,
    /// A measured value, e.g. `p95 1.84 s`.
    pub value: Option<String>,
    pub last_error: Option<LastError>,
    /// The checked URL (uptime).
    pub url: Option<String>,
    pub kibana_link: String,
    /// Channels the rule notifies; `None` = all.
    pub channels: Option<Vec<ChannelKind>>,
    pub timezone: chrono_tz::Tz,
    /// Messages the rate limit held back on this channel since the previous one.
    pub suppressed_before: u64,
    /// A test message (`shipper alert test`): no alert is firing.
    pub test: bool,
}

impl Notification {
    /// The message `shipper alert test` sends: marked TEST in its title (and `"test": true`
    /// for webhooks), saying that nothing is wrong, from `host`.
    pub fn test_message(host: &str, kibana: &url::Url, timezone: chrono_tz::Tz) -> Notification {
        let now = Utc::now();
        Notification {
            status: AlertStatus::Firing,
            reminder: false,
            rule: "didban alert test".to_string(),
            source: AlertSource::Shipper,
            group_field: "shipper",
            group: host.to_string(),
            condition:
                "a test message sent by `shipper alert test`: nothing is wrong, this channel works"
                    .to_string(),
            since: now,
            resolved_at: None,
            count: 0,
            total: 0,
            value: None,
            last_error: None,
            url: None,
            kibana_link: kibana.as_str().to_string(),
            channels: None,
            timezone,
            suppressed_before: 0,
            test: true,
        }
    }

    pub(crate) fn goes_to(&self, kind: ChannelKind) -> bool {
        self.channels.as_ref().is_none_or(|c| c.contains(&kind))
    }

    fn status_tag(&self) -> &'static str {
        if self.test {
            return "TEST";
        }
        match (self.status, self.reminder) {
            (AlertStatus::Firing, false) => "FIRING",
            (AlertStatus::Firing, true) => "STILL FIRING",
            (AlertStatus::Resolved, _) => "RESOLVED",
        }
    }

    /// `[FIRING] SystemError burst: service payment` (e-mail subject, first line elsewhere).
    pub(crate) fn title(&self) -> String {
        format!(
            "[{}] {}: {} {}",
            self.status_tag(),
            field(&self.rule),
            self.group_field,
            field(&self.group)
        )
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.timezone)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
            + &format!(" ({})", self.timezone.name())
    }

    /// The facts as (label, value) lines, shared by every renderer; each value is one line,
    /// masked (see [`field`]).
    pub(crate) fn facts(&self) -> Vec<(&'static str, String)> {
        self.raw_facts()
            .into_iter()
            .map(|(label, value)| (label, field(&value)))
            .collect()
    }

    fn raw_facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("Rule", format!("{} ({})", self.rule, self.condition)),
            (
                match self.group_field {
                    "monitor" => "Monitor",
                    "shipper" => "Shipper",
                    _ => "Service",
                },
                self.group.clone(),
            ),
            ("Since", self.local(self.since)),
        ];
        if let Some(end) = self.resolved_at {
            facts.push(("Resolved", self.local(end)));
            let secs = (end - self.since).num_seconds().max(0) as u64;
            facts.push((
                "Lasted",
                humantime::format_duration(std::time::Duration::from_secs(secs)).to_string(),
            ));
        }
        match (self.source, self.status) {
            (AlertSource::Logs, AlertStatus::Firing) => facts.push((
                "Count",
                format!(
                    "{} in the window, {} since it started",
                    self.count, self.total
                ),
            )),
            (AlertSource::Logs, AlertStatus::Resolved) => {
                facts.push(("Count", format!("{} while firing", self.total)))
            }
            (AlertSource::Uptime, AlertStatus::Firing) => {
                facts.push(("Checks", format!("{} consecutive down", self.count)))
            }
            (AlertSource::Uptime, AlertStatus::Resolved) => facts.push((
                "Checks",
                format!("{} down in a row before it came back", self.total),
            )),
            (AlertSource::Latency, _) => {}
            (AlertSource::Shipper, _) => {}
        }
        if let Some(v) = &self.value {
            facts.push(("Value", v.clone()));
        }
        if let Some(url) = &self.url {
            facts.push(("URL", url.clone()));
        }
        if let Some(e) = &self.last_error {
            let text = match (&e.error_type, &e.message) {
                (Some(t), Some(m)) => Some(format!("{t}: {m}")),
                (None, Some(m)) => Some(m.clone()),
                (Some(t), None) => Some(t.clone()),
                (None, None) => None,
            };
            if let Some(text) = text {
                facts.push(("Last error", text));
            }
            if let Some(tx) = &e.transaction_id {
                facts.push(("Transaction", tx.clone()));
            }
        }
        if self.suppressed_before > 0 {
            facts.push((
                "Note",
                format!(
                    "{} earlier message(s) were held back by the rate limit",
                    self.suppressed_before
                ),
            ));
        }
        facts
    }

    /// Plain text: e-mail bodies, the `text` of webhooks, Slack's notification fallback.
    pub(crate) fn plain_text(&self) -> String {
        let mut out = self.title();
        out.push_str("\n\n");
        for (label, value) in self.facts() {
            out.push_str(&format!("{label}: {value}\n"));
        }
        out.push_str(&format!("Kibana: {}\n", field(&self.kibana_link)));
        out
    }

    /// Telegram `sendMessage` text with `parse_mode` HTML, within Telegram's 4096 characters.
    pub(crate) fn telegram_html(&self) -> String {
        let icon = match self.status {
            AlertStatus::Firing => "🔴",
            AlertStatus::Resolved => "✅",
        };
        let mut out = format!("{icon} <b>{}</b>\n", html(&self.title()));
        for (label, value) in self.facts() {
            // Within Telegram's 4096 characters whatever the facts hold: the error gets the
            // most room, since it is what the reader acts on.
            let value = clip_chars(&value, if label == "Last error" { 1200 } else { 250 });
            if label == "Transaction" {
                out.push_str(&format!("<b>{label}:</b> <code>{}</code>\n", html(&value)));
            } else {
                out.push_str(&format!("<b>{label}:</b> {}\n", html(&value)));
            }
        }
        out.push_str(&format!(
            "<a href=\"{}\">Open in Kibana</a>",
            html(&self.kibana_link)
        ));
        out
    }

    /// Slack incoming webhook payload: `text` (the notification and fallback) and Block Kit
    /// `blocks` (a header, a section of facts, a link button).
    pub(crate) fn slack_payload(&self) -> Value {
        let facts: String = self
            .facts()
            .into_iter()
            .map(|(label, value)| {
                let value = clip_chars(&value, 400);
                if label == "Transaction" {
                    // A backtick would end the code span early.
                    format!("*{label}:* `{}`\n", mrkdwn(&value.replace('`', "'")))
                } else {
                    format!("*{label}:* {}\n", mrkdwn(&value))
                }
            })
            .collect();
        json!({
            "text": mrkdwn(&clip_chars(&self.title(), 3000)),
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": mrkdwn(&clip_chars(&self.title(), 150)), "emoji": true}
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": clip_chars(&facts, 3000)}
                },
                {
                    "type": "actions",
                    "elements": [{
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Kibana"},
                        "url": self.kibana_link
                    }]
                }
            ]
        })
    }

    /// The generic webhook's JSON document (schema version 1, documented in the crate's README).
    pub(crate) fn webhook_payload(&self) -> Value {
        // JSON escapes control characters itself; credentials and card numbers are masked.
        let masked =
            |v: &Option<String>| v.as_deref().map(|t| redact::mask_secrets(t).into_owned());
        let last = self.last_error.as_ref().map(|e| {
            json!({
                "message": masked(&e.message),
                "type": masked(&e.error_type),
                "transaction_id": e.transaction_id,
                "timestamp": e.timestamp,
            })
        });
        json!({
            "version": "1",
            "status": self.status.label(),
            "reminder": self.reminder,
            "rule": {"name": self.rule, "source": self.source.label(), "condition": self.condition},
            "group": {"field": self.group_field, "value": self.group},
            "starts_at": self.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "ends_at": self.resolved_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "count": self.count,
            "total": self.total,
            "value": self.value,
            "url": self.url,
            "last_error": last,
            "kibana_url": self.kibana_link,
            "suppressed_before": self.suppressed_before,
            "test": self.test,
            "title": self.title(),
            "text": self.plain_text(),
        })
    }
}

/// A value from a log document or a check, fit for any channel: on one line (every run of
/// control characters, line and paragraph separators and bidirectional overrides becomes
/// one space) and with card numbers and credentials masked.
pub(crate) fn field(text: &str) -> String {
    let masked = redact::mask_secrets(text);
    let mut out = String::with_capacity(masked.len());
    let mut in_run = false;
    for c in masked.chars() {
        let breaks = c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if breaks {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// Escapes text for Telegram's HTML parse mode (`<`, `>`, `&` and, inside attributes, `"`).
pub(crate) fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for Slack's mrkdwn: only `&`, `<` and `>` are control characters.
pub(crate) fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Kibana links: Discover on the transaction of the last error, else the dashboard.
pub(crate) mod kibana {
    use url::Url;

    /// The data view and dashboards shipped in `elastic-templates/kibana/didban.ndjson`.
    pub(crate) const LOGS_DATA_VIEW: &str = "didban-logs";
    pub(crate) const SERVICES_DASHBOARD: &str = "didban-services";
    pub(crate) const UPTIME_DASHBOARD: &str = "didban-uptime";

    fn base(kibana: &Url) -> String {
        kibana.as_str().trim_end_matches('/').to_string()
    }

    /// A dashboard by id.
    pub(crate) fn dashboard(kibana: &Url, id: &str) -> String {
        format!("{}/app/dashboards#/view/{id}", base(kibana))
    }

    /// Discover on the logs data view, filtered on one transaction over the last day.
    pub(crate) fn discover_transaction(kibana: &Url, transaction_id: &str) -> String {
        let kql = format!(
            "transaction.id:\"{}\"",
            transaction_id.replace(['"', '\\'], "")
        );
        let g = "(time:(from:now-24h,to:now))";
        let a = format!(
            "(dataSource:(dataViewId:{LOGS_DATA_VIEW},type:dataView),query:(language:kuery,query:{}))",
            rison_string(&kql)
        );
        format!(
            "{}/app/discover#/?_g={}&_a={}",
            base(kibana),
            encode(g),
            encode(&a)
        )
    }

    /// A string in Rison (Kibana's URL state encoding): quoted with `'`, `!` escaping `'` and `!`.
    fn rison_string(text: &str) -> String {
        format!("'{}'", text.replace('!', "!!").replace('\'', "!'"))
    }

    fn encode(text: &str) -> String {
        // Rison's punctuation stays readable; everything else that a URL fragment cannot
        // hold literally is escaped.
        const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'(')
            .remove(b')')
            .remove(b':')
            .remove(b',')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'!')
            .remove(b'\'');
        percent_encoding::utf8_percent_encode(text, SET).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn sample() -> Notification {
        Notification {
            status: AlertStatus::Firing,
            reminder: false,
            rule: "SystemError burst".into(),
            source: AlertSource::Logs,
            group_field: "service",
            group: "payment".into(),
            condition: "≥ 5 documents (log.category SystemError) within 1m".into(),
            since: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
            resolved_at: None,
            count: 7,
            total: 9,
            value: None,
            last_error: Some(LastError {
                message: Some("db <primary> & replica down".into()),
                error_type: Some("DependencyDown".into()),
                transaction_id: Some("tx-42".into()),
                timestamp: None,
            }),
            url: None,
            kibana_link: "http://localhost:5601/app/discover#/?_a=x&_g=y".into(),
            channels: None,
            timezone: chrono_tz::Asia::Tehran,
            suppressed_before: 0,
            test: false,
        }
    }

    #[test]
    fn the_message_says_what_where_since_when_how_many_and_the_last_error() {
        let text = sample().plain_text();
        assert!(
            text.starts_with("[FIRING] SystemError burst: service payment"),
            "{text}"
        );
        assert!(
            text.contains("Since: 2026-11-26 13:30:00 +03:30 (Asia/Tehran)"),
            "{text}"
        );
        assert!(text.contains("Count: 7 in the window, 9 since it started"));
        assert!(text.contains("Last error: DependencyDown: db <primary> & replica down"));
        assert!(text.contains("Transaction: tx-42"));
        assert!(text.contains("Kibana: http://localhost:5601/"));
    }

    #[test]
    fn telegram_html_escapes_the_error_text_and_the_link() {
        let h = sample().telegram_html();
        assert!(h.contains("db &lt;primary&gt; &amp; replica down"), "{h}");
        assert!(!h.contains("<primary>"));
        assert!(h.contains("<code>tx-42</code>"));
        assert!(h.contains("href=\"http://localhost:5601/app/discover#/?_a=x&amp;_g=y\""));
    }

    #[test]
    fn slack_blocks_escape_mrkdwn_and_carry_a_fallback_text() {
        let p = sample().slack_payload();
        assert_eq!(p["text"], "[FIRING] SystemError burst: service payment");
        assert_eq!(p["blocks"][0]["type"], "header");
        let section = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            section.contains("db &lt;primary&gt; &amp; replica down"),
            "{section}"
        );
        assert_eq!(
            p["blocks"][2]["elements"][0]["url"],
            "http://localhost:5601/app/discover#/?_a=x&_g=y"
        );
    }

    /// A notification whose fields were written by someone hostile.
    fn hostile() -> Notification {
        let mut n = sample();
        n.group = "pay<!channel>ment <http://evil.example|Kibana> &amp;".into();
        n.last_error = Some(LastError {
            message: Some(
                "refused\r\nKibana: http://evil.example/login\nAuthorization: Bearer tok3n-s3cret"
                    .into(),
            ),
            error_type: Some("DependencyFailed\u{2028}Rule: fake".into()),
            transaction_id: Some("tx`-42\n".into()),
            timestamp: None,
        });
        n
    }

    #[test]
    fn slack_text_and_blocks_escape_mentions_and_disguised_links() {
        let p = hostile().slack_payload();
        let text = p["text"].as_str().unwrap();
        let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
        let section = p["blocks"][1]["text"]["text"].as_str().unwrap();
        for rendered in [text, header, section] {
            assert!(
                !rendered.contains('<') && !rendered.contains('>'),
                "{rendered}"
            );
        }
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(
            text.contains("&lt;http://evil.example|Kibana&gt; &amp;amp;"),
            "{text}"
        );
        assert!(section.contains("`tx'-42 `"), "{section}");
    }

    #[test]
    fn a_field_cannot_add_a_line_in_any_channel() {
        let n = hostile();
        let plain = n.plain_text();
        let kibana_lines: Vec<&str> = plain.lines().filter(|l| l.starts_with("Kibana:")).collect();
        assert_eq!(
            kibana_lines,
            ["Kibana: http://localhost:5601/app/discover#/?_a=x&_g=y"],
            "{plain}"
        );
        assert!(
            !plain.lines().any(|l| l.starts_with("Rule: fake")),
            "{plain}"
        );
        let telegram = n.telegram_html();
        assert!(
            !telegram.lines().any(|l| l.starts_with("Kibana:")),
            "{telegram}"
        );
        assert_eq!(telegram.lines().count(), n.facts().len() + 2, "{telegram}");
        let section = n.slack_payload()["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(section.lines().count(), n.facts().len(), "{section}");
        assert!(!n.title().contains('\n'));
    }

    #[test]
    fn credentials_in_a_quoted_error_never_reach_a_channel() {
        let n = hostile();
        let webhook = n.webhook_payload().to_string();
        for rendered in [
            n.plain_text(),
            n.telegram_html(),
            n.slack_payload().to_string(),
            webhook,
        ] {
            assert!(!rendered.contains("tok3n-s3cret"), "{rendered}");
            assert!(rendered.contains("[REDACTED]"), "{rendered}");
        }
    }

    #[test]
    fn a_resolved_message_says_when_and_how_long() {
        let mut n = sample();
        n.status = AlertStatus::Resolved;
        n.resolved_at = Some(n.since + chrono::Duration::seconds(125));
        let text = n.plain_text();
        assert!(text.starts_with("[RESOLVED]"));
        assert!(text.contains("Lasted: 2m 5s"), "{text}");
        assert!(text.contains("Count: 9 while firing"));
        let w = n.webhook_payload();
        assert_eq!(w["status"], "resolved");
        assert_eq!(w["ends_at"], "2026-11-26T10:02:05.000Z");
        assert_eq!(w["last_error"]["transaction_id"], "tx-42");
    }

    #[test]
    fn discover_links_filter_on_the_transaction() {
        let k = url::Url::parse("https://kibana.example.com:5601/").unwrap();
        let link = kibana::discover_transaction(&k, "0199-ab'c");
        assert!(link.starts_with("https://kibana.example.com:5601/app/discover#/?_g=(time:(from:now-24h,to:now))&_a="), "{link}");
        assert!(link.contains("dataViewId:didban-logs"), "{link}");
        assert!(
            link.contains("query:'transaction.id:%220199-ab!'c%22'"),
            "{link}"
        );
        assert_eq!(
            kibana::dashboard(&k, kibana::UPTIME_DASHBOARD),
            "https://kibana.example.com:5601/app/dashboards#/view/didban-uptime"
        );
    }
}
