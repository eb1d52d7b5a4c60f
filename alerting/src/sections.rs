//! Every alerting setting, declared once: its flag, environment variable, help text (which
//! names its TOML key in brackets), type and key in the `[alerts]` section of the file. Each
//! struct is one section of the file and is read by clap (command line over environment) and
//! by serde (the file); a field that clap did not see is `None` and leaves the file's value
//! in place. Defaults and checks live in `config`, where the settings are resolved.
//!
//! The channel lines hold tokens and passwords, so they are secrets: `Debug` shows them as
//! `[REDACTED]`.

use std::time::Duration;

use clap::{ArgAction, Args};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::channels::ChannelKind;

/// `[alerts]`: channels (one line each), Kibana links, uptime rules; flattened into the
/// embedding program's command line.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Alerts {
    #[command(flatten)]
    pub channels: Channels,
    #[command(flatten)]
    pub uptime: Uptime,
    #[command(flatten)]
    pub self_monitoring: SelfMonitoring,
    /// Kibana base URL for the links in alerts (default http://localhost:5601)
    /// [alerts.kibana_url].
    #[arg(long, env = "KIBANA_URL")]
    pub kibana_url: Option<String>,
    /// Time zone of the times in alerts (default Asia/Tehran) [alerts.timezone].
    #[arg(
        long = "log-timezone",
        env = "LOG_TIMEZONE",
        value_name = "LOG_TIMEZONE"
    )]
    pub timezone: Option<String>,
    /// The default rules (SystemError and ApplicationError bursts per service, monitors down,
    /// latency): true or false (default true) [alerts.default_rules].
    #[arg(long = "alert-default-rules", env = "ALERT_DEFAULT_RULES",
          value_name = "ALERT_DEFAULT_RULES", action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub default_rules: Option<bool>,
    /// Repeat a firing alert this often; 0s = never (default 0s) [alerts.reminder_interval].
    #[arg(long = "alert-reminder-interval", env = "ALERT_REMINDER_INTERVAL",
          value_name = "ALERT_REMINDER_INTERVAL", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub reminder_interval: Option<Duration>,
    /// Messages per minute per channel at most; the rest are counted and dropped (default 20)
    /// [alerts.rate_limit_per_minute].
    #[arg(long = "alert-rate-limit-per-minute", env = "ALERT_RATE_LIMIT_PER_MINUTE",
          value_name = "ALERT_RATE_LIMIT_PER_MINUTE", value_parser = settings_kit::count::<u32>)]
    pub rate_limit_per_minute: Option<u32>,
    /// `[[alerts.rules]]`: file only.
    #[arg(skip)]
    #[serde(skip_serializing)]
    pub(crate) rules: Vec<RuleSection>,
}

/// `[alerts.channels]`: where alerts go. Alerting is on as soon as one is set.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channels {
    /// Telegram channel: telegram://<bot-token>@telegram?chats=<chat-id>[,<chat-id>]
    /// [alerts.channels.telegram].
    #[arg(long = "alert-telegram", env = "ALERT_TELEGRAM", value_name = "ALERT_TELEGRAM",
          hide_env_values = true, value_parser = settings_kit::secret)]
    #[serde(serialize_with = "settings_kit::expose")]
    pub telegram: Option<SecretString>,
    /// Telegram Bot API base URL (default https://api.telegram.org)
    /// [alerts.channels.telegram_api_url].
    #[arg(
        long = "alert-telegram-api-url",
        env = "ALERT_TELEGRAM_API_URL",
        value_name = "ALERT_TELEGRAM_API_URL"
    )]
    pub telegram_api_url: Option<String>,
    /// Slack incoming webhook: https://hooks.slack.com/services/... [alerts.channels.slack].
    #[arg(long = "alert-slack", env = "ALERT_SLACK", value_name = "ALERT_SLACK",
          hide_env_values = true, value_parser = settings_kit::secret)]
    #[serde(serialize_with = "settings_kit::expose")]
    pub slack: Option<SecretString>,
    /// E-mail: smtp://user:pass@host:587/?from=...&to=a@x,b@y (STARTTLS) or smtps://...
    /// (TLS) [alerts.channels.email].
    #[arg(long = "alert-email", env = "ALERT_EMAIL", value_name = "ALERT_EMAIL",
          hide_env_values = true, value_parser = settings_kit::secret)]
    #[serde(serialize_with = "settings_kit::expose")]
    pub email: Option<SecretString>,
    /// Generic JSON webhook URL [alerts.channels.webhook].
    #[arg(long = "alert-webhook", env = "ALERT_WEBHOOK", value_name = "ALERT_WEBHOOK",
          hide_env_values = true, value_parser = settings_kit::secret)]
    #[serde(serialize_with = "settings_kit::expose")]
    pub webhook: Option<SecretString>,
}

/// `[alerts.uptime]`: the rules on Heartbeat's data.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Uptime {
    /// How often Heartbeat's data is queried; 0s turns the uptime rules off (default 5s)
    /// [alerts.uptime.interval].
    #[arg(long = "alert-uptime-interval", env = "ALERT_UPTIME_INTERVAL",
          value_name = "ALERT_UPTIME_INTERVAL", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Consecutive down checks before a monitor alert fires (default 3)
    /// [alerts.uptime.down_checks].
    #[arg(long = "alert-uptime-down-checks", env = "ALERT_UPTIME_DOWN_CHECKS",
          value_name = "ALERT_UPTIME_DOWN_CHECKS", value_parser = settings_kit::count::<u32>)]
    pub down_checks: Option<u32>,
    /// p95 check duration above which a monitor is slow; 0s turns it off (default 1s)
    /// [alerts.uptime.latency_threshold].
    #[arg(long = "alert-latency-threshold", env = "ALERT_LATENCY_THRESHOLD",
          value_name = "ALERT_LATENCY_THRESHOLD", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub latency_threshold: Option<Duration>,
    /// Window of the p95 latency (default 5m) [alerts.uptime.latency_window].
    #[arg(long = "alert-latency-window", env = "ALERT_LATENCY_WINDOW",
          value_name = "ALERT_LATENCY_WINDOW", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub latency_window: Option<Duration>,
    /// Index pattern of Heartbeat's documents (default heartbeat-*): file only.
    #[arg(skip)]
    #[serde(skip_serializing)]
    pub index: Option<String>,
    /// Up checks in the window below which a p95 says nothing (default 5): file only.
    #[arg(skip)]
    #[serde(skip_serializing)]
    pub latency_min_checks: Option<u32>,
}

/// `[alerts.self_monitoring]`: the rules on the shipper itself. Each is a duration; `0s`
/// turns that rule off. They are default rules: on as soon as a channel is set, off with
/// `default_rules = false` unless set here.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfMonitoring {
    /// Fire when Elasticsearch has not answered any request for this long; 0s = off
    /// (default 60s) [alerts.self_monitoring.elasticsearch_unreachable].
    #[arg(long = "alert-elasticsearch-unreachable", env = "ALERT_ELASTICSEARCH_UNREACHABLE",
          value_name = "ALERT_ELASTICSEARCH_UNREACHABLE", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub elasticsearch_unreachable: Option<Duration>,
    /// Fire when the oldest line read but not acknowledged is older than this; 0s = off
    /// (default 5m) [alerts.self_monitoring.shipping_stalled].
    #[arg(long = "alert-shipping-stalled", env = "ALERT_SHIPPING_STALLED",
          value_name = "ALERT_SHIPPING_STALLED", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub shipping_stalled: Option<Duration>,
    /// Fire when documents are written to the dead-letter file, resolve after this long
    /// without any; 0s = off (default 5m) [alerts.self_monitoring.dead_letters_resolve_after].
    #[arg(long = "alert-dead-letters-resolve-after", env = "ALERT_DEAD_LETTERS_RESOLVE_AFTER",
          value_name = "ALERT_DEAD_LETTERS_RESOLVE_AFTER", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub dead_letters_resolve_after: Option<Duration>,
    /// Fire when Elasticsearch answers but holds no Heartbeat check newer than this; needs
    /// the uptime poll; 0s = off (default 2m) [alerts.self_monitoring.heartbeat_silent].
    #[arg(long = "alert-heartbeat-silent", env = "ALERT_HEARTBEAT_SILENT",
          value_name = "ALERT_HEARTBEAT_SILENT", value_parser = settings_kit::duration)]
    #[serde(with = "humantime_serde")]
    pub heartbeat_silent: Option<Duration>,
}

/// `[[alerts.rules]]`: a count of matching documents in a sliding window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSection {
    pub(crate) name: String,
    pub(crate) service: Option<String>,
    pub(crate) dataset: Option<String>,
    pub(crate) category: Option<String>,
    pub(crate) level: Option<String>,
    pub(crate) threshold: u64,
    pub(crate) window: String,
    pub(crate) resolve_after: Option<String>,
    pub(crate) channels: Option<Vec<ChannelKind>>,
}

/// Each file section of alerting with the arguments that are its settings, to name them in
/// errors (`ENV [alerts.key]`). `[alerts]` lists only its own arguments, not those of the
/// sections below it.
pub fn sections() -> Vec<(&'static str, clap::Command)> {
    let channels = Channels::augment_args(clap::Command::new("alerts.channels"));
    let uptime = Uptime::augment_args(clap::Command::new("alerts.uptime"));
    let self_monitoring =
        SelfMonitoring::augment_args(clap::Command::new("alerts.self_monitoring"));
    let nested: Vec<String> = channels
        .get_arguments()
        .chain(uptime.get_arguments())
        .chain(self_monitoring.get_arguments())
        .map(|a| a.get_id().to_string())
        .collect();
    let all = Alerts::augment_args(clap::Command::new("alerts"));
    let own = all
        .get_arguments()
        .filter(|a| !nested.iter().any(|id| id == a.get_id().as_str()))
        .fold(clap::Command::new("alerts"), |cmd, a| cmd.arg(a.clone()));
    vec![
        ("alerts.channels", channels),
        ("alerts.uptime", uptime),
        ("alerts.self_monitoring", self_monitoring),
        ("alerts", own),
    ]
}
