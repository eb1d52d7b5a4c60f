//! Alert settings: the `[alerts]` section (the `ALERT_*` one-liners layered over the
//! configuration file, declared in [`crate::sections`]) resolved into what the engine runs
//! with: defaults applied and every value checked once.
//!
//! Alerting is on as soon as one channel is configured; the default rules then apply unless
//! turned off. Errors name the setting (environment variable and file key) and the reason,
//! like every other setting of the shipper.

use std::collections::HashSet;
use std::time::Duration;

use schema::Category;
use secrecy::{ExposeSecret, SecretString};
use settings_kit::SettingError;
use url::Url;

use crate::channels::{self, ChannelKind, ChannelTarget};
use crate::sections::{sections, Alerts, RuleSection, SelfMonitoring, Uptime};

/// Which documents a log rule counts. Every part is optional; an empty filter counts all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFilter {
    /// `service.name` (or the dataset derived from it) equals this.
    pub service: Option<String>,
    /// The data stream dataset equals this (`loan_resource`).
    pub dataset: Option<String>,
    /// `log.category`, case-insensitive (`SystemError`).
    pub category: Option<String>,
    /// `log.level`, case-insensitive (`ERROR`).
    pub level: Option<String>,
}

/// A rule on the log stream. One alert instance per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRule {
    pub name: String,
    pub filter: RuleFilter,
    /// Fires when at least this many documents match within `window`.
    pub threshold: u64,
    pub window: Duration,
    /// Resolves once the count has stayed below the threshold this long (anti-flapping).
    pub resolve_after: Duration,
    /// Channels to notify; `None` = all.
    pub channels: Option<Vec<ChannelKind>>,
}

/// Rules on Heartbeat's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UptimeSettings {
    /// Index pattern of Heartbeat's documents.
    pub index: String,
    pub interval: Duration,
    /// Consecutive down checks before the alert fires.
    pub down_checks: u32,
    /// `None`: the latency rule is off.
    pub latency_threshold: Option<Duration>,
    pub latency_window: Duration,
    /// Fewer up checks in the window than this say nothing about a p95.
    pub latency_min_checks: u32,
}

/// Rules on the shipper itself; `None` turns a rule off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfMonitoringSettings {
    /// No answer from Elasticsearch (to the output or to the engine) for this long.
    pub elasticsearch_unreachable: Option<Duration>,
    /// The oldest line read but not acknowledged is older than this.
    pub shipping_stalled: Option<Duration>,
    /// Dead letters were written; resolves after this long without any.
    pub dead_letters_resolve_after: Option<Duration>,
    /// Elasticsearch answers but holds no Heartbeat check newer than this (needs the
    /// uptime poll).
    pub heartbeat_silent: Option<Duration>,
}

/// Everything the alert engine runs with, checked.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub targets: Vec<ChannelTarget>,
    pub rules: Vec<LogRule>,
    /// `None`: no uptime rules.
    pub uptime: Option<UptimeSettings>,
    pub self_monitoring: SelfMonitoringSettings,
    pub kibana_url: Url,
    pub timezone: chrono_tz::Tz,
    /// `None`: no reminders.
    pub reminder_interval: Option<Duration>,
    pub rate_limit_per_minute: u32,
}

/// The documents of a burst rule are counted over this window...
pub(crate) const DEFAULT_BURST_WINDOW: Duration = Duration::from_secs(60);
/// ...and the alert resolves after the count has stayed below its threshold this long.
pub(crate) const DEFAULT_RESOLVE_AFTER: Duration = Duration::from_secs(60);
/// The log evaluator's bitmask holds one bit per rule.
pub(crate) const MAX_RULES: usize = 64;

/// `ENV [alerts.key]` of the setting whose field is `id`.
fn label(id: &str) -> String {
    settings_kit::label(&sections(), id)
}

fn invalid(setting: &str, reason: impl Into<String>) -> SettingError {
    SettingError::new(setting, reason)
}

/// The value of a channel line, unless it is empty (an empty line is not set).
fn line(v: Option<SecretString>) -> Option<String> {
    v.map(|s| s.expose_secret().to_string())
        .filter(|s| !s.trim().is_empty())
}

/// A text setting, unless it is empty (an empty value is not set).
fn text(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// The rules that apply when a channel is configured and `default_rules` is not turned off.
///
/// - **SystemError burst: 5 in 1 minute per service.** An infrastructure failure fails a
///   request; one or two are a blip (a retried timeout), five within a minute mean a
///   dependency is down or saturated, and at any real traffic that is reached within seconds.
/// - **ApplicationError burst: 5 in 5 minutes per service.** A bug tends to repeat at the rate
///   its code path is used, which can be low; a longer window catches a steady trickle without
///   paging on a single panic.
pub(crate) fn default_rules() -> Vec<LogRule> {
    vec![
        LogRule {
            name: format!("{} burst", Category::SystemError.as_str()),
            filter: RuleFilter {
                category: Some(Category::SystemError.as_str().into()),
                ..RuleFilter::default()
            },
            threshold: 5,
            window: DEFAULT_BURST_WINDOW,
            resolve_after: DEFAULT_RESOLVE_AFTER,
            channels: None,
        },
        LogRule {
            name: format!("{} burst", Category::ApplicationError.as_str()),
            filter: RuleFilter {
                category: Some(Category::ApplicationError.as_str().into()),
                ..RuleFilter::default()
            },
            threshold: 5,
            window: Duration::from_secs(300),
            resolve_after: DEFAULT_RESOLVE_AFTER,
            channels: None,
        },
    ]
}

impl AlertSettings {
    /// Applies the defaults to the layered `[alerts]` section and checks it.
    /// `Ok(None)`: no channel, no alerting.
    pub fn resolve(alerts: Alerts) -> Result<Option<AlertSettings>, SettingError> {
        let ch = alerts.channels;
        let api_url =
            text(ch.telegram_api_url).unwrap_or_else(|| channels::DEFAULT_TELEGRAM_API.to_string());
        let api_url = channels::parse_telegram_api(&api_url)
            .map_err(|r| invalid(&label("telegram_api_url"), r))?;

        let mut targets = Vec::new();
        if let Some(line) = line(ch.telegram) {
            targets.extend(
                channels::parse_telegram(&line, &api_url)
                    .map_err(|r| invalid(&label("telegram"), r))?,
            );
        }
        if let Some(line) = line(ch.slack) {
            let url = channels::parse_webhook(&line).map_err(|r| invalid(&label("slack"), r))?;
            targets.push(ChannelTarget::Slack(url));
        }
        if let Some(line) = line(ch.email) {
            let email = channels::parse_email(&line).map_err(|r| invalid(&label("email"), r))?;
            targets.push(ChannelTarget::Email(email));
        }
        if let Some(line) = line(ch.webhook) {
            let url = channels::parse_webhook(&line).map_err(|r| invalid(&label("webhook"), r))?;
            targets.push(ChannelTarget::Webhook(url));
        }
        if targets.is_empty() {
            if !alerts.rules.is_empty() {
                return Err(invalid(
                    "[alerts.rules]",
                    "rules are configured but no channel: set ALERT_TELEGRAM, ALERT_SLACK, ALERT_EMAIL or ALERT_WEBHOOK",
                ));
            }
            return Ok(None);
        }
        let configured: HashSet<ChannelKind> = targets.iter().map(ChannelTarget::kind).collect();

        let kibana = text(alerts.kibana_url).unwrap_or_else(|| "http://localhost:5601".to_string());
        let kibana_url = Url::parse(kibana.trim()).map_err(|e| {
            invalid(
                &label("kibana_url"),
                format!("{kibana:?} is not a URL: {e}"),
            )
        })?;
        if !matches!(kibana_url.scheme(), "http" | "https") {
            return Err(invalid(
                &label("kibana_url"),
                "must start with http:// or https://",
            ));
        }

        let tz_name = text(alerts.timezone).unwrap_or_else(|| "Asia/Tehran".to_string());
        let timezone: chrono_tz::Tz = tz_name.trim().parse().map_err(|_| {
            invalid(
                &label("timezone"),
                format!("{tz_name:?} is not an IANA time zone like Asia/Tehran or UTC"),
            )
        })?;

        let use_defaults = alerts.default_rules.unwrap_or(true);

        let reminder = alerts.reminder_interval.unwrap_or(Duration::ZERO);
        if !reminder.is_zero() && reminder < Duration::from_secs(1) {
            return Err(invalid(
                &label("reminder_interval"),
                "must be 0s (off) or at least 1s",
            ));
        }

        let rate = alerts.rate_limit_per_minute.unwrap_or(20);
        if !(1..=600).contains(&rate) {
            return Err(invalid(
                &label("rate_limit_per_minute"),
                "must be between 1 and 600",
            ));
        }

        let mut rules = if use_defaults {
            default_rules()
        } else {
            Vec::new()
        };
        for (i, r) in alerts.rules.into_iter().enumerate() {
            rules.push(check_rule(i, r, &configured)?);
        }
        let mut names = HashSet::new();
        for r in &rules {
            if !names.insert(r.name.clone()) {
                return Err(invalid(
                    "[alerts.rules] name",
                    format!(
                        "two rules are named {:?} (a custom rule may not reuse a default rule's name; set default_rules = false to replace them)",
                        r.name
                    ),
                ));
            }
        }
        if rules.len() > MAX_RULES {
            return Err(invalid(
                "[alerts.rules]",
                format!("at most {MAX_RULES} rules"),
            ));
        }

        let uptime = uptime_settings(alerts.uptime, use_defaults)?;
        let self_monitoring =
            self_monitoring_settings(alerts.self_monitoring, use_defaults, uptime.is_some())?;
        Ok(Some(AlertSettings {
            targets,
            rules,
            uptime,
            self_monitoring,
            kibana_url,
            timezone,
            reminder_interval: (!reminder.is_zero()).then_some(reminder),
            rate_limit_per_minute: rate,
        }))
    }
}

fn uptime_settings(up: Uptime, use_defaults: bool) -> Result<Option<UptimeSettings>, SettingError> {
    let default_interval = if use_defaults {
        Duration::from_secs(5)
    } else {
        Duration::ZERO
    };
    let interval = up.interval.unwrap_or(default_interval);
    if interval.is_zero() {
        return Ok(None);
    }
    if interval < Duration::from_millis(100) {
        return Err(invalid(
            &label("interval"),
            "must be 0s (off) or at least 100ms",
        ));
    }
    let down_checks = up.down_checks.unwrap_or(3);
    if !(1..=100).contains(&down_checks) {
        return Err(invalid(&label("down_checks"), "must be between 1 and 100"));
    }
    let latency = up.latency_threshold.unwrap_or(Duration::from_secs(1));
    let latency_window = up.latency_window.unwrap_or(Duration::from_secs(300));
    if latency_window < Duration::from_secs(1) {
        return Err(invalid(&label("latency_window"), "must be at least 1s"));
    }
    let index = up.index.unwrap_or_else(|| "heartbeat-*".to_string());
    if index.is_empty()
        || index
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"'))
    {
        return Err(invalid(
            "[alerts.uptime.index]",
            format!("{index:?} is not an index pattern like heartbeat-*"),
        ));
    }
    let latency_min_checks = up.latency_min_checks.unwrap_or(5).max(1);
    Ok(Some(UptimeSettings {
        index,
        interval,
        down_checks,
        latency_threshold: (!latency.is_zero()).then_some(latency),
        latency_window,
        latency_min_checks,
    }))
}

/// The defaults of the rules on the shipper itself:
///
/// - **Elasticsearch unreachable: 60 s.** The output retries on its own, so a blip of a few
///   seconds (a node restart, a GC pause) is nobody's business; a minute without any answer
///   is an outage someone must look at, and the log files are filling meanwhile.
/// - **Shipping stalled: 5 min.** Lines normally wait well under a second; five minutes
///   means nothing is getting through (429s, a hung cluster, rejected credentials) even if
///   Elasticsearch answers.
/// - **Dead letters: resolve after 5 min without any.** Each dead letter is a document
///   Elasticsearch refused for good; the alert says so once and then stays quiet while a
///   steady trickle continues.
/// - **Heartbeat silent: 2 min.** Heartbeat checks every 10 s; two minutes without a check
///   means Heartbeat itself is down, and "no monitor down" would otherwise be a lie.
fn self_monitoring_settings(
    s: SelfMonitoring,
    use_defaults: bool,
    uptime_polled: bool,
) -> Result<SelfMonitoringSettings, SettingError> {
    let rule = |id: &str, value: Option<Duration>, default: u64| {
        let value = value.unwrap_or(if use_defaults {
            Duration::from_secs(default)
        } else {
            Duration::ZERO
        });
        if value.is_zero() {
            return Ok(None);
        }
        if value < Duration::from_secs(1) {
            return Err(invalid(&label(id), "must be 0s (off) or at least 1s"));
        }
        Ok(Some(value))
    };
    let explicit_heartbeat = s.heartbeat_silent.is_some_and(|d| !d.is_zero());
    let mut heartbeat_silent = rule("heartbeat_silent", s.heartbeat_silent, 120)?;
    if !uptime_polled {
        if explicit_heartbeat {
            return Err(invalid(
                &label("heartbeat_silent"),
                "needs the uptime poll: set ALERT_UPTIME_INTERVAL [alerts.uptime.interval] above 0s",
            ));
        }
        // The default follows the uptime poll: without it there is nothing to read.
        heartbeat_silent = None;
    }
    Ok(SelfMonitoringSettings {
        elasticsearch_unreachable: rule(
            "elasticsearch_unreachable",
            s.elasticsearch_unreachable,
            60,
        )?,
        shipping_stalled: rule("shipping_stalled", s.shipping_stalled, 300)?,
        dead_letters_resolve_after: rule(
            "dead_letters_resolve_after",
            s.dead_letters_resolve_after,
            300,
        )?,
        heartbeat_silent,
    })
}

/// A rule's duration in the file, or `default` when it is left out.
fn rule_duration(
    setting: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, SettingError> {
    value.map_or(Ok(default), |v| {
        settings_kit::duration(v).map_err(|r| invalid(setting, r))
    })
}

fn check_rule(
    index: usize,
    r: RuleSection,
    configured: &HashSet<ChannelKind>,
) -> Result<LogRule, SettingError> {
    let at = |key: &str| format!("[[alerts.rules]] #{} {key}", index + 1);
    let name = r.name.trim().to_string();
    if name.is_empty() {
        return Err(invalid(&at("name"), "must not be empty"));
    }
    if r.threshold == 0 {
        return Err(invalid(
            &at("threshold"),
            format!("rule {name:?}: must be at least 1"),
        ));
    }
    let window = rule_duration(&at("window"), Some(&r.window), DEFAULT_BURST_WINDOW)?;
    if window < Duration::from_millis(100) || window > Duration::from_secs(24 * 3600) {
        return Err(invalid(
            &at("window"),
            format!("rule {name:?}: must be between 100ms and 24h"),
        ));
    }
    let resolve_after = rule_duration(
        &at("resolve_after"),
        r.resolve_after.as_deref(),
        DEFAULT_RESOLVE_AFTER.min(window),
    )?;
    if let Some(list) = &r.channels {
        if list.is_empty() {
            return Err(invalid(
                &at("channels"),
                format!("rule {name:?}: leave it out to notify every channel"),
            ));
        }
        if let Some(missing) = list.iter().find(|k| !configured.contains(k)) {
            return Err(invalid(
                &at("channels"),
                format!("rule {name:?}: the {missing} channel is not configured"),
            ));
        }
    }
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(LogRule {
        name,
        filter: RuleFilter {
            service: clean(r.service),
            dataset: clean(r.dataset),
            category: clean(r.category),
            level: clean(r.level),
        },
        threshold: r.threshold,
        window,
        resolve_after,
        channels: r.channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(v: &str) -> Option<SecretString> {
        Some(SecretString::from(v.to_string()))
    }

    fn slack() -> Alerts {
        let mut a = Alerts::default();
        a.channels.slack = secret("https://hooks.slack.com/services/T/B/X");
        a
    }

    fn section(text: &str) -> Alerts {
        toml::from_str(text).unwrap()
    }

    /// The whole file around one `[alerts]` section, as the embedding program reads it.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct File<T> {
        alerts: T,
    }

    /// `given` (what clap read) layered over the `[alerts]` section `file`, resolved.
    fn from_sources(given: &Alerts, file: &str) -> Result<Option<AlertSettings>, SettingError> {
        let section: toml::Table = toml::from_str(file).unwrap();
        let text = toml::to_string(&File { alerts: section }).unwrap();
        let layered: File<Alerts> = settings_kit::layer(
            &sections(),
            File { alerts: given },
            Some(("shipper.toml", &text)),
        )?;
        AlertSettings::resolve(layered.alerts)
    }

    #[test]
    fn no_channel_means_no_alerting() {
        let s = AlertSettings::resolve(Alerts::default());
        assert!(s.unwrap().is_none());
        let mut empty = Alerts::default();
        empty.channels.telegram = secret("");
        assert!(AlertSettings::resolve(empty).unwrap().is_none());
    }

    #[test]
    fn one_channel_turns_on_the_default_rules_and_uptime() {
        let s = AlertSettings::resolve(slack()).unwrap().unwrap();
        let names: Vec<&str> = s.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["SystemError burst", "ApplicationError burst"]);
        let up = s.uptime.unwrap();
        assert_eq!(
            (up.down_checks, up.interval, up.index.as_str()),
            (3, Duration::from_secs(5), "heartbeat-*")
        );
        assert_eq!(up.latency_threshold, Some(Duration::from_secs(1)));
        assert_eq!(s.timezone, chrono_tz::Asia::Tehran);
        assert_eq!(s.kibana_url.as_str(), "http://localhost:5601/");
        assert_eq!(s.reminder_interval, None);
    }

    #[test]
    fn the_rules_on_the_shipper_are_on_by_default_and_each_can_be_tuned_or_turned_off() {
        let s = AlertSettings::resolve(slack()).unwrap().unwrap();
        assert_eq!(
            s.self_monitoring,
            SelfMonitoringSettings {
                elasticsearch_unreachable: Some(Duration::from_secs(60)),
                shipping_stalled: Some(Duration::from_secs(300)),
                dead_letters_resolve_after: Some(Duration::from_secs(300)),
                heartbeat_silent: Some(Duration::from_secs(120)),
            }
        );
        let file =
            "[self_monitoring]\nelasticsearch_unreachable = \"5s\"\nshipping_stalled = \"0s\"\n";
        let s = from_sources(&slack(), file).unwrap().unwrap();
        assert_eq!(
            s.self_monitoring.elasticsearch_unreachable,
            Some(Duration::from_secs(5))
        );
        assert_eq!(s.self_monitoring.shipping_stalled, None);

        // Without default rules they are off unless set; the Heartbeat rule needs the poll.
        let s = from_sources(
            &slack(),
            "default_rules = false\n[self_monitoring]\nshipping_stalled = \"1m\"",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            s.self_monitoring,
            SelfMonitoringSettings {
                shipping_stalled: Some(Duration::from_secs(60)),
                ..SelfMonitoringSettings::default()
            }
        );
        let s = from_sources(&slack(), "[uptime]\ninterval = \"0s\"")
            .unwrap()
            .unwrap();
        assert_eq!(
            s.self_monitoring.heartbeat_silent, None,
            "no poll, no default"
        );
        let err = from_sources(
            &slack(),
            "[uptime]\ninterval = \"0s\"\n[self_monitoring]\nheartbeat_silent = \"1m\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ALERT_HEARTBEAT_SILENT"), "{err}");
        let err =
            from_sources(&slack(), "[self_monitoring]\nshipping_stalled = \"10ms\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("ALERT_SHIPPING_STALLED [alerts.self_monitoring.shipping_stalled]"),
            "{err}"
        );
    }

    #[test]
    fn file_rules_are_read_and_checked() {
        let file = r#"
            default_rules = false
            reminder_interval = "1h"
            [channels]
            telegram = "telegram://1:a@telegram?chats=5"
            [[rules]]
            name = "Payment business errors"
            service = "payment"
            category = "BusinessError"
            level = "warn"
            threshold = 20
            window = "5m"
            resolve_after = "2m"
            channels = ["telegram"]
            "#;
        let s = from_sources(&slack(), file).unwrap().unwrap();
        assert_eq!(s.targets.len(), 2);
        assert_eq!(s.rules.len(), 1);
        let r = &s.rules[0];
        assert_eq!(r.filter.service.as_deref(), Some("payment"));
        assert_eq!(r.filter.dataset, None);
        assert_eq!((r.threshold, r.window), (20, Duration::from_secs(300)));
        assert_eq!(r.resolve_after, Duration::from_secs(120));
        assert_eq!(r.channels, Some(vec![ChannelKind::Telegram]));
        assert_eq!(s.reminder_interval, Some(Duration::from_secs(3600)));
        assert!(s.uptime.is_none(), "no defaults and no uptime interval");
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let mut given = slack();
        given.kibana_url = Some("https://kibana.example.com".into());
        given.uptime.down_checks = Some(7);
        let file =
            "kibana_url = \"http://file:5601\"\ntimezone = \"UTC\"\n[uptime]\ndown_checks = 2\n";
        let s = from_sources(&given, file).unwrap().unwrap();
        assert_eq!(s.kibana_url.as_str(), "https://kibana.example.com/");
        assert_eq!(
            s.timezone,
            chrono_tz::UTC,
            "the file fills what clap left out"
        );
        assert_eq!(s.uptime.unwrap().down_checks, 7);
    }

    #[test]
    fn wrong_rules_and_values_are_named() {
        let cases = [
            (
                "[[rules]]\nname = \"x\"\nthreshold = 0\nwindow = \"1m\"",
                "threshold",
            ),
            (
                "[[rules]]\nname = \"x\"\nthreshold = 1\nwindow = \"soon\"",
                "window",
            ),
            (
                "[[rules]]\nname = \"x\"\nthreshold = 1\nwindow = \"1m\"\nchannels = [\"email\"]",
                "channels",
            ),
            (
                "[[rules]]\nname = \"SystemError burst\"\nthreshold = 1\nwindow = \"1m\"",
                "name",
            ),
            ("timezone = \"Mars/Olympus\"", "LOG_TIMEZONE"),
            ("kibana_url = \"kibana:5601\"", "KIBANA_URL"),
            ("[uptime]\ndown_checks = 0", "ALERT_UPTIME_DOWN_CHECKS"),
            (
                "[uptime]\ndown_checks = \"three\"",
                "ALERT_UPTIME_DOWN_CHECKS [alerts.uptime.down_checks]",
            ),
            (
                "reminder_interval = \"soon\"",
                "ALERT_REMINDER_INTERVAL [alerts.reminder_interval]",
            ),
        ];
        for (text, setting) in cases {
            let err = from_sources(&slack(), text).unwrap_err();
            assert!(err.to_string().contains(setting), "{text}: {err}");
        }
        let mut bad = Alerts::default();
        bad.channels.email = secret("smtp://host/?to=a@example.com");
        let err = AlertSettings::resolve(bad).unwrap_err();
        assert!(
            err.setting
                .starts_with("ALERT_EMAIL [alerts.channels.email]"),
            "{err}"
        );
    }

    #[test]
    fn rules_without_a_channel_are_an_error_not_silence() {
        let file = "[[rules]]\nname = \"x\"\nthreshold = 1\nwindow = \"1m\"";
        let err = from_sources(&Alerts::default(), file).unwrap_err();
        assert!(err.reason.contains("no channel"), "{err}");
    }

    #[test]
    fn debug_of_the_settings_and_arguments_hides_the_channel_secrets() {
        let mut args = Alerts::default();
        args.channels.telegram = secret("telegram://1:SECRETa@telegram?chats=5");
        args.channels.slack = secret("https://hooks.slack.com/services/T/B/SECRETb");
        args.channels.email = secret("smtp://u:SECRETc@h/?from=a@example.com&to=b@example.com");
        args.channels.webhook = secret("https://example.com/SECRETd");
        let text = "[channels]\nslack = \"https://hooks.slack.com/services/SECRETe\"";
        let file = section(text);
        assert!(!format!("{file:?}").contains("SECRET"));
        let settings = from_sources(&args, text).unwrap().unwrap();
        for text in [format!("{args:?}"), format!("{settings:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
        }
    }

    #[test]
    fn unknown_keys_in_the_alerts_section_are_refused() {
        let err =
            toml::from_str::<Alerts>("[[rules]]\nname = \"x\"\nthreshhold = 1\nwindow = \"1m\"")
                .unwrap_err();
        assert!(err.to_string().contains("threshhold"), "{err}");
    }

    #[test]
    fn every_setting_documents_its_variable_and_its_file_key() {
        let mut count = 0;
        for (section, cmd) in sections() {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.contains(&format!("[{section}.{id}]")), "{id}: {help}");
                assert!(arg.get_env().is_some(), "{id} has no environment variable");
                count += 1;
            }
        }
        assert_eq!(count, 18, "every argument is in exactly one section");
    }
}
