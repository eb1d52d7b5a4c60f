//! Alert settings: the `ALERT_*` one-liners and the `[alerts]` section of the configuration
//! file, merged (environment over file) and checked.
//!
//! Alerting is on as soon as one channel is configured; the default rules then apply unless
//! turned off. Errors name the setting (environment variable and file key) and the reason,
//! like every other setting of the shipper.

use std::collections::HashSet;
use std::time::Duration;

use schema::Category;
use serde::Deserialize;
use url::Url;

use super::channels::{self, ChannelKind, ChannelTarget};

/// The environment variables (and flags) of alerting; flattened into the shipper's `Cli`.
/// `Debug` is written by hand: the channel lines hold secrets.
#[derive(Clone, Default, clap::Args)]
pub struct AlertArgs {
    /// Telegram channel: telegram://<bot-token>@telegram?chats=<chat-id>[,<chat-id>]
    /// [alerts.channels.telegram].
    #[arg(long, env = "ALERT_TELEGRAM", hide_env_values = true)]
    pub alert_telegram: Option<String>,
    /// Telegram Bot API base URL (default https://api.telegram.org)
    /// [alerts.channels.telegram_api_url].
    #[arg(long, env = "ALERT_TELEGRAM_API_URL")]
    pub alert_telegram_api_url: Option<String>,
    /// Slack incoming webhook: https://hooks.slack.com/services/... [alerts.channels.slack].
    #[arg(long, env = "ALERT_SLACK", hide_env_values = true)]
    pub alert_slack: Option<String>,
    /// E-mail: smtp://user:pass@host:587/?from=...&to=a@x,b@y (STARTTLS) or smtps://...
    /// (TLS) [alerts.channels.email].
    #[arg(long, env = "ALERT_EMAIL", hide_env_values = true)]
    pub alert_email: Option<String>,
    /// Generic JSON webhook URL [alerts.channels.webhook].
    #[arg(long, env = "ALERT_WEBHOOK", hide_env_values = true)]
    pub alert_webhook: Option<String>,
    /// Kibana base URL for the links in alerts (default http://localhost:5601)
    /// [alerts.kibana_url].
    #[arg(long, env = "KIBANA_URL")]
    pub kibana_url: Option<String>,
    /// Time zone of the times in alerts (default Asia/Tehran) [alerts.timezone].
    #[arg(long, env = "LOG_TIMEZONE")]
    pub log_timezone: Option<String>,
    /// The default rules (SystemError and ApplicationError bursts per service, monitors down,
    /// latency): true or false (default true) [alerts.default_rules].
    #[arg(long, env = "ALERT_DEFAULT_RULES")]
    pub alert_default_rules: Option<String>,
    /// Repeat a firing alert this often; 0s = never (default 0s) [alerts.reminder_interval].
    #[arg(long, env = "ALERT_REMINDER_INTERVAL")]
    pub alert_reminder_interval: Option<String>,
    /// Messages per minute per channel at most; the rest are counted and dropped (default 20)
    /// [alerts.rate_limit_per_minute].
    #[arg(long, env = "ALERT_RATE_LIMIT_PER_MINUTE")]
    pub alert_rate_limit_per_minute: Option<String>,
    /// How often Heartbeat's data is queried; 0s turns the uptime rules off (default 5s)
    /// [alerts.uptime.interval].
    #[arg(long, env = "ALERT_UPTIME_INTERVAL")]
    pub alert_uptime_interval: Option<String>,
    /// Consecutive down checks before a monitor alert fires (default 3)
    /// [alerts.uptime.down_checks].
    #[arg(long, env = "ALERT_UPTIME_DOWN_CHECKS")]
    pub alert_uptime_down_checks: Option<String>,
    /// p95 check duration above which a monitor is slow; 0s turns it off (default 1s)
    /// [alerts.uptime.latency_threshold].
    #[arg(long, env = "ALERT_LATENCY_THRESHOLD")]
    pub alert_latency_threshold: Option<String>,
    /// Window of the p95 latency (default 5m) [alerts.uptime.latency_window].
    #[arg(long, env = "ALERT_LATENCY_WINDOW")]
    pub alert_latency_window: Option<String>,
}

impl std::fmt::Debug for AlertArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<set>");
        f.debug_struct("AlertArgs")
            .field("alert_telegram", &set(&self.alert_telegram))
            .field("alert_telegram_api_url", &self.alert_telegram_api_url)
            .field("alert_slack", &set(&self.alert_slack))
            .field("alert_email", &set(&self.alert_email))
            .field("alert_webhook", &set(&self.alert_webhook))
            .field("kibana_url", &self.kibana_url)
            .field("log_timezone", &self.log_timezone)
            .field("alert_default_rules", &self.alert_default_rules)
            .field("alert_reminder_interval", &self.alert_reminder_interval)
            .field(
                "alert_rate_limit_per_minute",
                &self.alert_rate_limit_per_minute,
            )
            .field("alert_uptime_interval", &self.alert_uptime_interval)
            .field("alert_uptime_down_checks", &self.alert_uptime_down_checks)
            .field("alert_latency_threshold", &self.alert_latency_threshold)
            .field("alert_latency_window", &self.alert_latency_window)
            .finish()
    }
}

/// `[alerts]` in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    kibana_url: Option<String>,
    timezone: Option<String>,
    default_rules: Option<bool>,
    reminder_interval: Option<String>,
    rate_limit_per_minute: Option<u32>,
    #[serde(default)]
    channels: ChannelsSection,
    #[serde(default)]
    uptime: UptimeSection,
    #[serde(default)]
    rules: Vec<RuleSection>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsSection {
    telegram: Option<String>,
    telegram_api_url: Option<String>,
    slack: Option<String>,
    email: Option<String>,
    webhook: Option<String>,
}

impl std::fmt::Debug for ChannelsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The lines hold secrets; only say which are set.
        f.debug_struct("ChannelsSection")
            .field("telegram", &self.telegram.is_some())
            .field("slack", &self.slack.is_some())
            .field("email", &self.email.is_some())
            .field("webhook", &self.webhook.is_some())
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UptimeSection {
    index: Option<String>,
    interval: Option<String>,
    down_checks: Option<u32>,
    latency_threshold: Option<String>,
    latency_window: Option<String>,
    latency_min_checks: Option<u32>,
}

/// `[[alerts.rules]]`: a count of matching documents in a sliding window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    name: String,
    service: Option<String>,
    dataset: Option<String>,
    category: Option<String>,
    level: Option<String>,
    threshold: u64,
    window: String,
    resolve_after: Option<String>,
    channels: Option<Vec<ChannelKind>>,
}

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

/// Everything the alert engine runs with, checked.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub targets: Vec<ChannelTarget>,
    pub rules: Vec<LogRule>,
    /// `None`: no uptime rules.
    pub uptime: Option<UptimeSettings>,
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

/// A setting that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct AlertConfigError {
    pub setting: String,
    pub reason: String,
}

fn invalid(setting: &str, reason: impl Into<String>) -> AlertConfigError {
    AlertConfigError {
        setting: setting.to_string(),
        reason: reason.into(),
    }
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
    /// Merges `args` (environment, flags) over `file`. `Ok(None)`: no channel, no alerting.
    pub fn from_sources(
        args: &AlertArgs,
        file: AlertsSection,
    ) -> Result<Option<AlertSettings>, AlertConfigError> {
        let ch = file.channels;
        const API: &str = "ALERT_TELEGRAM_API_URL [alerts.channels.telegram_api_url]";
        let api_url = pick(&args.alert_telegram_api_url, ch.telegram_api_url)
            .unwrap_or_else(|| channels::DEFAULT_TELEGRAM_API.to_string());
        let api_url = channels::parse_telegram_api(&api_url).map_err(|r| invalid(API, r))?;

        let mut targets = Vec::new();
        if let Some(line) = pick(&args.alert_telegram, ch.telegram) {
            targets.extend(
                channels::parse_telegram(&line, &api_url)
                    .map_err(|r| invalid("ALERT_TELEGRAM [alerts.channels.telegram]", r))?,
            );
        }
        if let Some(line) = pick(&args.alert_slack, ch.slack) {
            let url = channels::parse_webhook(&line)
                .map_err(|r| invalid("ALERT_SLACK [alerts.channels.slack]", r))?;
            targets.push(ChannelTarget::Slack(url));
        }
        if let Some(line) = pick(&args.alert_email, ch.email) {
            let email = channels::parse_email(&line)
                .map_err(|r| invalid("ALERT_EMAIL [alerts.channels.email]", r))?;
            targets.push(ChannelTarget::Email(email));
        }
        if let Some(line) = pick(&args.alert_webhook, ch.webhook) {
            let url = channels::parse_webhook(&line)
                .map_err(|r| invalid("ALERT_WEBHOOK [alerts.channels.webhook]", r))?;
            targets.push(ChannelTarget::Webhook(url));
        }
        if targets.is_empty() {
            if !file.rules.is_empty() {
                return Err(invalid(
                    "[alerts.rules]",
                    "rules are configured but no channel: set ALERT_TELEGRAM, ALERT_SLACK, ALERT_EMAIL or ALERT_WEBHOOK",
                ));
            }
            return Ok(None);
        }
        let configured: HashSet<ChannelKind> = targets.iter().map(ChannelTarget::kind).collect();

        const KIBANA: &str = "KIBANA_URL [alerts.kibana_url]";
        let kibana = pick(&args.kibana_url, file.kibana_url)
            .unwrap_or_else(|| "http://localhost:5601".to_string());
        let kibana_url = Url::parse(kibana.trim())
            .map_err(|e| invalid(KIBANA, format!("{kibana:?} is not a URL: {e}")))?;
        if !matches!(kibana_url.scheme(), "http" | "https") {
            return Err(invalid(KIBANA, "must start with http:// or https://"));
        }

        const TZ: &str = "LOG_TIMEZONE [alerts.timezone]";
        let tz_name =
            pick(&args.log_timezone, file.timezone).unwrap_or_else(|| "Asia/Tehran".to_string());
        let timezone: chrono_tz::Tz = tz_name.trim().parse().map_err(|_| {
            invalid(
                TZ,
                format!("{tz_name:?} is not an IANA time zone like Asia/Tehran or UTC"),
            )
        })?;

        const DEFAULTS: &str = "ALERT_DEFAULT_RULES [alerts.default_rules]";
        let use_defaults = match &args.alert_default_rules {
            Some(v) => parse_bool(DEFAULTS, v)?,
            None => file.default_rules.unwrap_or(true),
        };

        const REMIND: &str = "ALERT_REMINDER_INTERVAL [alerts.reminder_interval]";
        let reminder = duration(
            REMIND,
            pick(&args.alert_reminder_interval, file.reminder_interval).as_deref(),
            Duration::ZERO,
        )?;
        if !reminder.is_zero() && reminder < Duration::from_secs(1) {
            return Err(invalid(REMIND, "must be 0s (off) or at least 1s"));
        }

        const RATE: &str = "ALERT_RATE_LIMIT_PER_MINUTE [alerts.rate_limit_per_minute]";
        let rate = match &args.alert_rate_limit_per_minute {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid(RATE, format!("{v:?} is not a whole number")))?,
            None => file.rate_limit_per_minute.unwrap_or(20),
        };
        if !(1..=600).contains(&rate) {
            return Err(invalid(RATE, "must be between 1 and 600"));
        }

        let mut rules = if use_defaults {
            default_rules()
        } else {
            Vec::new()
        };
        for (i, r) in file.rules.into_iter().enumerate() {
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

        let uptime = uptime_settings(args, file.uptime, use_defaults)?;
        Ok(Some(AlertSettings {
            targets,
            rules,
            uptime,
            kibana_url,
            timezone,
            reminder_interval: (!reminder.is_zero()).then_some(reminder),
            rate_limit_per_minute: rate,
        }))
    }
}

fn uptime_settings(
    args: &AlertArgs,
    file: UptimeSection,
    use_defaults: bool,
) -> Result<Option<UptimeSettings>, AlertConfigError> {
    const INTERVAL: &str = "ALERT_UPTIME_INTERVAL [alerts.uptime.interval]";
    let default_interval = if use_defaults {
        Duration::from_secs(5)
    } else {
        Duration::ZERO
    };
    let interval = duration(
        INTERVAL,
        pick(&args.alert_uptime_interval, file.interval).as_deref(),
        default_interval,
    )?;
    if interval.is_zero() {
        return Ok(None);
    }
    if interval < Duration::from_millis(100) {
        return Err(invalid(INTERVAL, "must be 0s (off) or at least 100ms"));
    }
    const CHECKS: &str = "ALERT_UPTIME_DOWN_CHECKS [alerts.uptime.down_checks]";
    let down_checks = match &args.alert_uptime_down_checks {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| invalid(CHECKS, format!("{v:?} is not a whole number")))?,
        None => file.down_checks.unwrap_or(3),
    };
    if !(1..=100).contains(&down_checks) {
        return Err(invalid(CHECKS, "must be between 1 and 100"));
    }
    const LATENCY: &str = "ALERT_LATENCY_THRESHOLD [alerts.uptime.latency_threshold]";
    let latency = duration(
        LATENCY,
        pick(&args.alert_latency_threshold, file.latency_threshold).as_deref(),
        Duration::from_secs(1),
    )?;
    const WINDOW: &str = "ALERT_LATENCY_WINDOW [alerts.uptime.latency_window]";
    let latency_window = duration(
        WINDOW,
        pick(&args.alert_latency_window, file.latency_window).as_deref(),
        Duration::from_secs(300),
    )?;
    if latency_window < Duration::from_secs(1) {
        return Err(invalid(WINDOW, "must be at least 1s"));
    }
    let index = file.index.unwrap_or_else(|| "heartbeat-*".to_string());
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
    let latency_min_checks = file.latency_min_checks.unwrap_or(5).max(1);
    Ok(Some(UptimeSettings {
        index,
        interval,
        down_checks,
        latency_threshold: (!latency.is_zero()).then_some(latency),
        latency_window,
        latency_min_checks,
    }))
}

fn check_rule(
    index: usize,
    r: RuleSection,
    configured: &HashSet<ChannelKind>,
) -> Result<LogRule, AlertConfigError> {
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
    let window = duration(&at("window"), Some(&r.window), DEFAULT_BURST_WINDOW)?;
    if window < Duration::from_millis(100) || window > Duration::from_secs(24 * 3600) {
        return Err(invalid(
            &at("window"),
            format!("rule {name:?}: must be between 100ms and 24h"),
        ));
    }
    let resolve_after = duration(
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

/// The environment value when set and not empty (compose passes unset `.env` lines as
/// empty strings), else the file's.
fn pick(env: &Option<String>, file: Option<String>) -> Option<String> {
    env.clone()
        .filter(|s| !s.trim().is_empty())
        .or(file.filter(|s| !s.trim().is_empty()))
}

fn parse_bool(setting: &str, v: &str) -> Result<bool, AlertConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(setting, format!("{v:?} is neither true nor false"))),
    }
}

fn duration(
    setting: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, AlertConfigError> {
    match value {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v.trim()).map_err(|e| {
            invalid(
                setting,
                format!("{v:?} is not a duration like 500ms, 30s or 5m: {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack() -> AlertArgs {
        AlertArgs {
            alert_slack: Some("https://hooks.slack.com/services/T/B/X".into()),
            ..AlertArgs::default()
        }
    }

    fn section(text: &str) -> AlertsSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn no_channel_means_no_alerting() {
        let s = AlertSettings::from_sources(&AlertArgs::default(), AlertsSection::default());
        assert!(s.unwrap().is_none());
        let empty = AlertArgs {
            alert_telegram: Some(String::new()),
            ..AlertArgs::default()
        };
        assert!(
            AlertSettings::from_sources(&empty, AlertsSection::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn one_channel_turns_on_the_default_rules_and_uptime() {
        let s = AlertSettings::from_sources(&slack(), AlertsSection::default())
            .unwrap()
            .unwrap();
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
    fn file_rules_are_read_and_checked() {
        let file = section(
            r#"
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
            "#,
        );
        let s = AlertSettings::from_sources(&slack(), file)
            .unwrap()
            .unwrap();
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
        ];
        for (text, setting) in cases {
            let err = AlertSettings::from_sources(&slack(), section(text)).unwrap_err();
            assert!(err.to_string().contains(setting), "{text}: {err}");
        }
        let bad = AlertArgs {
            alert_email: Some("smtp://host/?to=a@example.com".into()),
            ..AlertArgs::default()
        };
        let err = AlertSettings::from_sources(&bad, AlertsSection::default()).unwrap_err();
        assert!(err.setting.starts_with("ALERT_EMAIL"), "{err}");
    }

    #[test]
    fn rules_without_a_channel_are_an_error_not_silence() {
        let file = section("[[rules]]\nname = \"x\"\nthreshold = 1\nwindow = \"1m\"");
        let err = AlertSettings::from_sources(&AlertArgs::default(), file).unwrap_err();
        assert!(err.reason.contains("no channel"), "{err}");
    }

    #[test]
    fn debug_of_the_settings_and_arguments_hides_the_channel_secrets() {
        let args = AlertArgs {
            alert_telegram: Some("telegram://1:SECRETa@telegram?chats=5".into()),
            alert_slack: Some("https://hooks.slack.com/services/T/B/SECRETb".into()),
            alert_email: Some("smtp://u:SECRETc@h/?from=a@example.com&to=b@example.com".into()),
            alert_webhook: Some("https://example.com/SECRETd".into()),
            ..AlertArgs::default()
        };
        let file = section("[channels]\nslack = \"https://hooks.slack.com/services/SECRETe\"");
        assert!(!format!("{file:?}").contains("SECRET"));
        let settings = AlertSettings::from_sources(&args, file).unwrap().unwrap();
        for text in [format!("{args:?}"), format!("{settings:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
        }
    }

    #[test]
    fn unknown_keys_in_the_alerts_section_are_refused() {
        let err = toml::from_str::<AlertsSection>(
            "[[rules]]\nname = \"x\"\nthreshhold = 1\nwindow = \"1m\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("threshhold"), "{err}");
    }
}
