//! `shipper alert test | silence`: check the alert channels, and hold an alert's messages
//! for a while.
//!
//! `test` sends one message, marked TEST, through each configured channel (or the one
//! named) directly, without the running shipper's queue, rate limit or retries, and says
//! per channel whether it was delivered or why not. `silence` edits the silences in the
//! data directory's alert state (`alerts/silences.json`), which a running shipper reads
//! again as soon as it changes (see [`alerting::silences`]).

use std::process::ExitCode;
use std::time::Duration;

use super::EXIT_SETTINGS;
use crate::config::{Cli, Settings};
use alerting::silences::{self, Silence, ALL_RULES};

/// Exit status when a channel did not take the test message.
const EXIT_UNDELIVERED: u8 = 1;

/// `shipper alert`.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum Action {
    /// Sends a test message through each configured channel (or CHANNEL: telegram, slack,
    /// email, webhook) and reports, per channel, delivered or why not.
    #[command(
        after_help = "Exit status: 0 every channel took the message; 1 a channel did \
        not (its reason is printed); 2 no channel is configured, CHANNEL is not one of them, \
        or a setting is wrong."
    )]
    Test {
        /// Only this kind of channel: telegram, slack, email or webhook.
        channel: Option<String>,
    },
    /// Holds the messages of an alert for a while (a deploy, a maintenance window); the
    /// alert is still evaluated and counted, and announced when the silence ends if it is
    /// still firing.
    #[command(subcommand)]
    Silence(SilenceAction),
}

#[derive(Debug, Clone, clap::Subcommand)]
enum SilenceAction {
    /// Adds a silence.
    #[command(after_help = "Exit status: 0 added; 2 a setting or an option is wrong.")]
    Add {
        /// The rule's name as its messages show it, or `all`.
        #[arg(long)]
        rule: String,
        /// Only the alerts about this service, monitor or shipper.
        #[arg(long)]
        group: Option<String>,
        /// How long, e.g. 30m or 2h.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Why, for whoever lists the silences.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lists the silences in force.
    List {
        /// Include the ones that ended.
        #[arg(long)]
        all: bool,
    },
    /// Ends a silence now (its held alerts are announced if still firing).
    #[command(
        after_help = "Exit status: 0 removed; 1 no silence has this id; 2 a setting is wrong."
    )]
    Remove {
        /// The id `list` shows.
        id: String,
    },
}

/// Runs `shipper alert ...`.
pub fn run(cli: &Cli, args: &AlertArgs) -> ExitCode {
    let settings = match Settings::load_read_only(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shipper alert: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    match &args.action {
        Action::Test { channel } => test(&settings, channel.as_deref()),
        Action::Silence(action) => silence(&settings, action),
    }
}

fn test(settings: &Settings, only: Option<&str>) -> ExitCode {
    let Some(alerts) = &settings.alerts else {
        eprintln!("shipper alert test: no alert channel is configured (ALERT_TELEGRAM, ALERT_SLACK, ALERT_EMAIL, ALERT_WEBHOOK)");
        return ExitCode::from(EXIT_SETTINGS);
    };
    let targets: Vec<_> = alerts
        .targets
        .iter()
        .filter(|t| only.is_none_or(|k| super::validate::channel_name(t) == k))
        .collect();
    if targets.is_empty() {
        let configured: Vec<&str> = alerts
            .targets
            .iter()
            .map(super::validate::channel_name)
            .collect();
        eprintln!(
            "shipper alert test: no {} channel is configured (configured: {})",
            only.unwrap_or("?"),
            configured.join(", ")
        );
        return ExitCode::from(EXIT_SETTINGS);
    }
    let message = alerting::message::Notification::test_message(
        &settings.encode.host_name,
        &alerts.kibana_url,
        alerts.timezone,
    );
    let outcomes = super::runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let http = alerting::notify::http_client()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            let mut outcomes = Vec::new();
            for target in &targets {
                let outcome = match alerting::notify::Sender::new(target, &http) {
                    Ok(sender) => sender.send(&message).await.map_err(|e| e.message),
                    Err(e) => Err(e),
                };
                outcomes.push((
                    super::validate::channel_name(target),
                    target.shown(),
                    outcome,
                ));
            }
            Ok::<_, String>(outcomes)
        })
    });
    let outcomes = match outcomes {
        Ok(o) => o,
        Err(e) => {
            eprintln!("shipper alert test: {e}");
            return ExitCode::from(EXIT_UNDELIVERED);
        }
    };
    let mut all = true;
    for (kind, shown, outcome) in outcomes {
        match outcome {
            Ok(()) => println!("delivered      {kind:<9} {shown}"),
            Err(why) => {
                all = false;
                println!("NOT DELIVERED  {kind:<9} {shown}: {why}");
            }
        }
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNDELIVERED)
    }
}

fn silence(settings: &Settings, action: &SilenceAction) -> ExitCode {
    let dir = settings.data_dir.join("alerts");
    let mut list = match silences::load(&dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shipper alert silence: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    let now = chrono::Utc::now();
    match action {
        SilenceAction::Add {
            rule,
            group,
            duration,
            reason,
        } => {
            let Ok(length) = chrono::Duration::from_std(*duration) else {
                eprintln!("shipper alert silence add: --for {duration:?} is too long");
                return ExitCode::from(EXIT_SETTINGS);
            };
            if duration.is_zero() {
                eprintln!("shipper alert silence add: --for must be more than 0s");
                return ExitCode::from(EXIT_SETTINGS);
            }
            let rule = if rule == "all" {
                ALL_RULES
            } else {
                rule.as_str()
            };
            let silence = Silence {
                id: silences::new_id(now, &list),
                rule: rule.to_string(),
                group: group.clone(),
                created: now,
                until: now + length,
                reason: reason.clone(),
            };
            // Ended silences are dropped as new ones are added: the file stays small.
            list.retain(|s| s.until > now);
            list.push(silence.clone());
            if let Err(e) = silences::save(&dir, &list) {
                eprintln!("shipper alert silence add: {e}");
                return ExitCode::from(EXIT_SETTINGS);
            }
            println!(
                "silence {} added: {} until {}",
                silence.id,
                describe(&silence),
                silence
                    .until
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            ExitCode::SUCCESS
        }
        SilenceAction::List { all } => {
            let shown: Vec<&Silence> = list.iter().filter(|s| *all || s.until > now).collect();
            if shown.is_empty() {
                println!("no silence in force");
            }
            for s in shown {
                let left = (s.until - now).to_std().map_or("ended".to_string(), |d| {
                    format!(
                        "{} left",
                        humantime::format_duration(Duration::from_secs(d.as_secs()))
                    )
                });
                println!(
                    "{}  {}  until {} ({left}){}",
                    s.id,
                    describe(s),
                    s.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    if s.reason.is_empty() {
                        String::new()
                    } else {
                        format!("  reason: {}", s.reason)
                    }
                );
            }
            ExitCode::SUCCESS
        }
        SilenceAction::Remove { id } => {
            let before = list.len();
            list.retain(|s| &s.id != id);
            if list.len() == before {
                eprintln!("shipper alert silence remove: no silence has the id {id:?} (see `shipper alert silence list`)");
                return ExitCode::from(1);
            }
            if let Err(e) = silences::save(&dir, &list) {
                eprintln!("shipper alert silence remove: {e}");
                return ExitCode::from(EXIT_SETTINGS);
            }
            println!("silence {id} removed");
            ExitCode::SUCCESS
        }
    }
}

fn describe(s: &Silence) -> String {
    let rule = if s.rule == ALL_RULES {
        "every rule".to_string()
    } else {
        format!("rule {:?}", s.rule)
    };
    match &s.group {
        Some(g) => format!("{rule}, group {g:?}"),
        None => rule,
    }
}
