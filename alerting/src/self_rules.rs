//! Rules on the shipper itself, so an outage of the pipeline is not silent: Elasticsearch
//! unreachable, shipping stalled, dead letters written, Heartbeat silent.
//!
//! The first three read the embedding program's [`Vitals`](crate::vitals::Vitals) every
//! half second ([`Reading`]); Heartbeat silent reads the uptime poll's answers. Each is one
//! alert instance, about this shipper (its host name). The evaluators are pure: time and
//! readings come in, notifications go out, which is what the tests below drive.
//!
//! - **Elasticsearch unreachable** fires once nothing answered (a status below 500, to the
//!   output or to the engine's own queries and probes) for the threshold, counted from the
//!   start when nothing ever answered; it resolves at the first answer.
//! - **Shipping stalled** fires once the oldest unacknowledged line is older than the
//!   threshold. It resolves once that is no longer so *and* shipping made progress since it
//!   fired (documents settled), or nothing has been pending for the threshold: after a
//!   restart the lines read again are young while Elasticsearch may still refuse them, and
//!   that is not a recovery.
//! - **Dead letters written** fires when the dead-letter count grew since the last
//!   evaluation and resolves after the quiet period without any.
//! - **Heartbeat silent** fires when a poll answered but held no check newer than the
//!   threshold (counted from the start when there never was one); a poll that failed says
//!   nothing either way.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::SelfMonitoringSettings;
use crate::message::{kibana, AlertSource, AlertStatus, LastError, Notification};
use crate::state::SavedAlert;
use crate::telemetry as m;
use crate::MessageContext;

pub(crate) const UNREACHABLE_RULE: &str = "Elasticsearch unreachable";
pub(crate) const STALLED_RULE: &str = "Shipping stalled";
pub(crate) const DEAD_LETTERS_RULE: &str = "Dead letters written";
pub(crate) const HEARTBEAT_RULE: &str = "Heartbeat silent";

/// What the evaluator reads at one tick.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    /// The latest answer from Elasticsearch, to the output or to the engine.
    pub(crate) last_answer: Option<Instant>,
    pub(crate) oldest_unacknowledged: Option<Duration>,
    pub(crate) documents_settled: u64,
    pub(crate) dead_letters: u64,
    pub(crate) dead_letter_dir: Option<PathBuf>,
    pub(crate) last_error: Option<String>,
}

#[derive(Debug)]
struct Firing {
    since: DateTime<Utc>,
    last_sent: Instant,
    total: u64,
    /// Shipping stalled: documents settled when it fired (progress is measured from here).
    settled_at_start: u64,
}

impl Firing {
    fn restored(saved: &SavedAlert, now: Instant) -> Firing {
        Firing {
            since: saved.since,
            last_sent: saved.last_notified_instant(now),
            total: saved.total,
            settled_at_start: 0,
        }
    }
}

/// The message of one rule on the shipper.
struct Message<'a> {
    rule: &'static str,
    condition: String,
    firing: &'a Firing,
    status: AlertStatus,
    reminder: bool,
    count: u64,
    value: Option<String>,
    last_error: Option<String>,
    dashboard: &'static str,
}

impl MessageContext {
    fn shipper_notification(
        &self,
        shipper: &str,
        m: Message<'_>,
        wall: DateTime<Utc>,
    ) -> Notification {
        Notification {
            status: m.status,
            reminder: m.reminder,
            rule: m.rule.to_string(),
            source: AlertSource::Shipper,
            group_field: "shipper",
            group: shipper.to_string(),
            condition: m.condition,
            since: m.firing.since,
            resolved_at: (m.status == AlertStatus::Resolved).then_some(wall),
            count: m.count,
            total: m.firing.total,
            value: m.value,
            last_error: m.last_error.map(|e| LastError {
                message: Some(e),
                ..LastError::default()
            }),
            url: None,
            kibana_link: kibana::dashboard(&self.kibana_url, m.dashboard),
            channels: None,
            timezone: self.timezone,
            suppressed_before: 0,
            test: false,
        }
    }
}

fn words(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

/// Counts a state change, and the firing gauge of the rules on the shipper (shared by two
/// tasks, so moved up and down rather than set).
fn transition(rule: &'static str, status: AlertStatus) {
    metrics::counter!(m::TRANSITIONS, "rule" => rule, "status" => status.label()).increment(1);
    let firing = metrics::gauge!(m::FIRING, "source" => AlertSource::Shipper.label());
    match status {
        AlertStatus::Firing => firing.increment(1.0),
        AlertStatus::Resolved => firing.decrement(1.0),
    }
}

fn restored_firing() {
    metrics::gauge!(m::FIRING, "source" => AlertSource::Shipper.label()).increment(1.0);
}

/// Elasticsearch unreachable, shipping stalled and dead letters written.
pub(crate) struct SelfEvaluator {
    settings: SelfMonitoringSettings,
    ctx: MessageContext,
    shipper: String,
    started: Instant,
    unreachable: Option<Firing>,
    stalled: Option<Firing>,
    /// Since when nothing has been pending (for a stalled alert with nothing left to ship).
    idle_since: Option<Instant>,
    dead_letters: Option<Firing>,
    dead_letters_seen: u64,
    last_dead_letter: Instant,
}

impl SelfEvaluator {
    pub(crate) fn new(
        settings: SelfMonitoringSettings,
        ctx: MessageContext,
        shipper: String,
        now: Instant,
    ) -> Self {
        SelfEvaluator {
            settings,
            ctx,
            shipper,
            started: now,
            unreachable: None,
            stalled: None,
            idle_since: None,
            dead_letters: None,
            dead_letters_seen: 0,
            last_dead_letter: now,
        }
    }

    /// Takes back a saved alert of one of its rules; `false` when it is not one of them (or
    /// the rule is off now).
    pub(crate) fn restore(&mut self, saved: &SavedAlert, now: Instant) -> bool {
        if saved.source() != Some(AlertSource::Shipper) || saved.group != self.shipper {
            return false;
        }
        let slot = match saved.rule.as_str() {
            UNREACHABLE_RULE if self.settings.elasticsearch_unreachable.is_some() => {
                &mut self.unreachable
            }
            STALLED_RULE if self.settings.shipping_stalled.is_some() => &mut self.stalled,
            DEAD_LETTERS_RULE if self.settings.dead_letters_resolve_after.is_some() => {
                &mut self.dead_letters
            }
            _ => return false,
        };
        *slot = Some(Firing::restored(saved, now));
        restored_firing();
        true
    }

    #[cfg(test)]
    pub(crate) fn firing(&self) -> usize {
        [&self.unreachable, &self.stalled, &self.dead_letters]
            .iter()
            .filter(|f| f.is_some())
            .count()
    }

    pub(crate) fn evaluate(
        &mut self,
        r: &Reading,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        self.unreachable(r, now, wall, &mut out);
        self.stalled(r, now, wall, &mut out);
        self.dead_letters(r, now, wall, &mut out);
        out
    }

    fn reminder_due(&self, f: &mut Firing, now: Instant) -> bool {
        match self.ctx.reminder_interval {
            Some(every) if now.saturating_duration_since(f.last_sent) >= every => {
                f.last_sent = now;
                true
            }
            _ => false,
        }
    }

    fn unreachable(
        &mut self,
        r: &Reading,
        now: Instant,
        wall: DateTime<Utc>,
        out: &mut Vec<Notification>,
    ) {
        let Some(threshold) = self.settings.elasticsearch_unreachable else {
            return;
        };
        let silent = now.saturating_duration_since(r.last_answer.unwrap_or(self.started));
        let condition = format!("no answer from Elasticsearch for {}", words(threshold));
        let value = |silent: Duration| Some(format!("no answer for {}", words(silent)));
        let answered = r.last_answer.is_some() && silent < threshold;
        match self.unreachable.take() {
            None if silent >= threshold => {
                let since = wall - chrono::Duration::from_std(silent).unwrap_or_default();
                let f = Firing {
                    since,
                    last_sent: now,
                    total: 0,
                    settled_at_start: 0,
                };
                transition(UNREACHABLE_RULE, AlertStatus::Firing);
                out.push(self.ctx.shipper_notification(
                    &self.shipper,
                    Message {
                        rule: UNREACHABLE_RULE,
                        condition,
                        firing: &f,
                        status: AlertStatus::Firing,
                        reminder: false,
                        count: 0,
                        value: value(silent),
                        last_error: r.last_error.clone(),
                        dashboard: kibana::SERVICES_DASHBOARD,
                    },
                    wall,
                ));
                self.unreachable = Some(f);
            }
            None => {}
            Some(f) if answered => {
                transition(UNREACHABLE_RULE, AlertStatus::Resolved);
                out.push(self.ctx.shipper_notification(
                    &self.shipper,
                    Message {
                        rule: UNREACHABLE_RULE,
                        condition,
                        firing: &f,
                        status: AlertStatus::Resolved,
                        reminder: false,
                        count: 0,
                        value: Some("Elasticsearch answers again".into()),
                        last_error: None,
                        dashboard: kibana::SERVICES_DASHBOARD,
                    },
                    wall,
                ));
            }
            Some(mut f) => {
                if self.reminder_due(&mut f, now) {
                    out.push(self.ctx.shipper_notification(
                        &self.shipper,
                        Message {
                            rule: UNREACHABLE_RULE,
                            condition,
                            firing: &f,
                            status: AlertStatus::Firing,
                            reminder: true,
                            count: 0,
                            value: value(silent),
                            last_error: r.last_error.clone(),
                            dashboard: kibana::SERVICES_DASHBOARD,
                        },
                        wall,
                    ));
                }
                self.unreachable = Some(f);
            }
        }
    }

    fn stalled(
        &mut self,
        r: &Reading,
        now: Instant,
        wall: DateTime<Utc>,
        out: &mut Vec<Notification>,
    ) {
        let Some(threshold) = self.settings.shipping_stalled else {
            return;
        };
        match r.oldest_unacknowledged {
            Some(_) => self.idle_since = None,
            None => {
                self.idle_since.get_or_insert(now);
            }
        }
        let age = r.oldest_unacknowledged.unwrap_or_default();
        let condition = format!(
            "the oldest unacknowledged line is older than {}",
            words(threshold)
        );
        let value = Some(format!("oldest unacknowledged line waited {}", words(age)));
        match self.stalled.take() {
            None if age >= threshold => {
                let since = wall - chrono::Duration::from_std(age - threshold).unwrap_or_default();
                let f = Firing {
                    since,
                    last_sent: now,
                    total: 0,
                    settled_at_start: r.documents_settled,
                };
                transition(STALLED_RULE, AlertStatus::Firing);
                out.push(self.ctx.shipper_notification(
                    &self.shipper,
                    Message {
                        rule: STALLED_RULE,
                        condition,
                        firing: &f,
                        status: AlertStatus::Firing,
                        reminder: false,
                        count: 0,
                        value,
                        last_error: r.last_error.clone(),
                        dashboard: kibana::SERVICES_DASHBOARD,
                    },
                    wall,
                ));
                self.stalled = Some(f);
            }
            None => {}
            Some(f) => {
                let progressed = r.documents_settled > f.settled_at_start;
                let idle_long = self
                    .idle_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= threshold);
                if age < threshold && (progressed || idle_long) {
                    transition(STALLED_RULE, AlertStatus::Resolved);
                    out.push(self.ctx.shipper_notification(
                        &self.shipper,
                        Message {
                            rule: STALLED_RULE,
                            condition,
                            firing: &f,
                            status: AlertStatus::Resolved,
                            reminder: false,
                            count: 0,
                            value: Some("lines are acknowledged again".into()),
                            last_error: None,
                            dashboard: kibana::SERVICES_DASHBOARD,
                        },
                        wall,
                    ));
                } else {
                    let mut f = f;
                    if self.reminder_due(&mut f, now) {
                        out.push(self.ctx.shipper_notification(
                            &self.shipper,
                            Message {
                                rule: STALLED_RULE,
                                condition,
                                firing: &f,
                                status: AlertStatus::Firing,
                                reminder: true,
                                count: 0,
                                value,
                                last_error: r.last_error.clone(),
                                dashboard: kibana::SERVICES_DASHBOARD,
                            },
                            wall,
                        ));
                    }
                    self.stalled = Some(f);
                }
            }
        }
    }

    fn dead_letters(
        &mut self,
        r: &Reading,
        now: Instant,
        wall: DateTime<Utc>,
        out: &mut Vec<Notification>,
    ) {
        let Some(quiet) = self.settings.dead_letters_resolve_after else {
            return;
        };
        let new = r.dead_letters.saturating_sub(self.dead_letters_seen);
        self.dead_letters_seen = self.dead_letters_seen.max(r.dead_letters);
        if new > 0 {
            self.last_dead_letter = now;
        }
        let condition = format!(
            "documents refused by Elasticsearch written to the dead-letter file (resolves after {} without any)",
            words(quiet)
        );
        let place = r
            .dead_letter_dir
            .as_ref()
            .map(|d| format!(" in {}", d.display()))
            .unwrap_or_default();
        match self.dead_letters.take() {
            None if new > 0 => {
                let f = Firing {
                    since: wall,
                    last_sent: now,
                    total: new,
                    settled_at_start: 0,
                };
                transition(DEAD_LETTERS_RULE, AlertStatus::Firing);
                out.push(self.ctx.shipper_notification(
                    &self.shipper,
                    Message {
                        rule: DEAD_LETTERS_RULE,
                        condition,
                        firing: &f,
                        status: AlertStatus::Firing,
                        reminder: false,
                        count: new,
                        value: Some(format!(
                            "{new} document(s) written to the dead-letter file{place}"
                        )),
                        last_error: r.last_error.clone(),
                        dashboard: kibana::SERVICES_DASHBOARD,
                    },
                    wall,
                ));
                self.dead_letters = Some(f);
            }
            None => {}
            Some(mut f) => {
                f.total += new;
                if now.saturating_duration_since(self.last_dead_letter) >= quiet {
                    transition(DEAD_LETTERS_RULE, AlertStatus::Resolved);
                    out.push(self.ctx.shipper_notification(
                        &self.shipper,
                        Message {
                            rule: DEAD_LETTERS_RULE,
                            condition,
                            firing: &f,
                            status: AlertStatus::Resolved,
                            reminder: false,
                            count: 0,
                            value: Some(format!(
                            "{} document(s) written to the dead-letter file{place} while it fired",
                            f.total
                        )),
                            last_error: None,
                            dashboard: kibana::SERVICES_DASHBOARD,
                        },
                        wall,
                    ));
                } else {
                    if self.reminder_due(&mut f, now) {
                        out.push(self.ctx.shipper_notification(&self.shipper, Message {
                            rule: DEAD_LETTERS_RULE,
                            condition,
                            firing: &f,
                            status: AlertStatus::Firing,
                            reminder: true,
                            count: new,
                            value: Some(format!(
                                "{} document(s) written to the dead-letter file{place} since it started",
                                f.total
                            )),
                            last_error: r.last_error.clone(),
                            dashboard: kibana::SERVICES_DASHBOARD,
                        }, wall));
                    }
                    self.dead_letters = Some(f);
                }
            }
        }
    }
}

/// What one uptime poll says about Heartbeat's freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeartbeatPoll {
    /// Elasticsearch answered; the newest final check it holds (within the poll's lookback).
    Answered(Option<DateTime<Utc>>),
    /// The poll failed: nothing can be said.
    Failed,
}

/// Heartbeat silent.
pub(crate) struct HeartbeatSilence {
    threshold: Duration,
    index: String,
    ctx: MessageContext,
    shipper: String,
    started: Instant,
    firing: Option<Firing>,
}

impl HeartbeatSilence {
    pub(crate) fn new(
        threshold: Duration,
        index: String,
        ctx: MessageContext,
        shipper: String,
        now: Instant,
    ) -> Self {
        HeartbeatSilence {
            threshold,
            index,
            ctx,
            shipper,
            started: now,
            firing: None,
        }
    }

    pub(crate) fn restore(&mut self, saved: &SavedAlert, now: Instant) -> bool {
        if saved.source() != Some(AlertSource::Shipper)
            || saved.rule != HEARTBEAT_RULE
            || saved.group != self.shipper
        {
            return false;
        }
        self.firing = Some(Firing::restored(saved, now));
        restored_firing();
        true
    }

    pub(crate) fn evaluate(
        &mut self,
        poll: HeartbeatPoll,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Vec<Notification> {
        let HeartbeatPoll::Answered(newest) = poll else {
            return Vec::new();
        };
        let silent = match newest {
            Some(at) => (wall - at).to_std().unwrap_or_default(),
            None => now.saturating_duration_since(self.started),
        };
        let fresh = newest.is_some() && silent < self.threshold;
        let condition = format!(
            "no Heartbeat check newer than {} in {}",
            words(self.threshold),
            self.index
        );
        let value = match newest {
            Some(at) => Some(format!(
                "newest check {} old",
                words((wall - at).to_std().unwrap_or_default())
            )),
            None => Some("no recent check at all".to_string()),
        };
        fn message<'a>(
            condition: &str,
            f: &'a Firing,
            status: AlertStatus,
            reminder: bool,
            value: Option<String>,
        ) -> Message<'a> {
            Message {
                rule: HEARTBEAT_RULE,
                condition: condition.to_string(),
                firing: f,
                status,
                reminder,
                count: 0,
                value,
                last_error: None,
                dashboard: kibana::UPTIME_DASHBOARD,
            }
        }
        let mut out = Vec::new();
        match self.firing.take() {
            None if silent >= self.threshold => {
                let since = match newest {
                    Some(at) => at,
                    None => wall - chrono::Duration::from_std(silent).unwrap_or_default(),
                };
                let f = Firing {
                    since,
                    last_sent: now,
                    total: 0,
                    settled_at_start: 0,
                };
                transition(HEARTBEAT_RULE, AlertStatus::Firing);
                out.push(self.ctx.shipper_notification(
                    &self.shipper,
                    message(&condition, &f, AlertStatus::Firing, false, value),
                    wall,
                ));
                self.firing = Some(f);
            }
            None => {}
            Some(f) if fresh => {
                transition(HEARTBEAT_RULE, AlertStatus::Resolved);
                out.push(self.ctx.shipper_notification(
                    &self.shipper,
                    message(&condition, &f, AlertStatus::Resolved, false, value),
                    wall,
                ));
            }
            Some(mut f) => {
                if let Some(every) = self.ctx.reminder_interval {
                    if now.saturating_duration_since(f.last_sent) >= every {
                        f.last_sent = now;
                        out.push(self.ctx.shipper_notification(
                            &self.shipper,
                            message(&condition, &f, AlertStatus::Firing, true, value),
                            wall,
                        ));
                    }
                }
                self.firing = Some(f);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(reminder: Option<Duration>) -> MessageContext {
        MessageContext {
            kibana_url: url::Url::parse("http://localhost:5601").unwrap(),
            timezone: chrono_tz::UTC,
            reminder_interval: reminder,
        }
    }

    fn settings() -> SelfMonitoringSettings {
        SelfMonitoringSettings {
            elasticsearch_unreachable: Some(secs(60)),
            shipping_stalled: Some(secs(300)),
            dead_letters_resolve_after: Some(secs(300)),
            heartbeat_silent: Some(secs(120)),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn rules(out: &[Notification]) -> Vec<(String, AlertStatus, bool)> {
        out.iter()
            .map(|n| (n.rule.clone(), n.status, n.reminder))
            .collect()
    }

    fn evaluator(reminder: Option<Duration>, t0: Instant) -> SelfEvaluator {
        SelfEvaluator::new(settings(), ctx(reminder), "host-1".into(), t0)
    }

    #[test]
    fn elasticsearch_never_answering_fires_after_the_threshold_from_the_start_and_resolves_at_the_first_answer(
    ) {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = evaluator(None, t0);
        let down = Reading {
            last_error: Some("cannot connect to http://es:9200".into()),
            ..Reading::default()
        };
        assert!(e.evaluate(&down, t0 + secs(59), w0).is_empty());
        let fired = e.evaluate(&down, t0 + secs(60), w0 + chrono::Duration::seconds(60));
        assert_eq!(
            rules(&fired),
            [(UNREACHABLE_RULE.to_string(), AlertStatus::Firing, false)]
        );
        let n = &fired[0];
        assert_eq!((n.group_field, n.group.as_str()), ("shipper", "host-1"));
        assert_eq!(n.since, w0, "since the silence began");
        assert!(
            n.plain_text().contains("cannot connect to http://es:9200"),
            "{}",
            n.plain_text()
        );
        assert!(
            e.evaluate(&down, t0 + secs(120), w0).is_empty(),
            "announced once"
        );

        let back = Reading {
            last_answer: Some(t0 + secs(121)),
            ..Reading::default()
        };
        let resolved = e.evaluate(&back, t0 + secs(121), w0);
        assert_eq!(
            rules(&resolved),
            [(UNREACHABLE_RULE.to_string(), AlertStatus::Resolved, false)]
        );
        assert!(e.evaluate(&back, t0 + secs(122), w0).is_empty());
    }

    #[test]
    fn an_answer_within_the_threshold_keeps_it_quiet_and_reminders_repeat_a_long_outage() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = evaluator(Some(secs(600)), t0);
        for s in (0..600).step_by(10) {
            let r = Reading {
                last_answer: Some(t0 + secs(s)),
                ..Reading::default()
            };
            assert!(e.evaluate(&r, t0 + secs(s + 59), w0).is_empty());
        }
        let last = Reading {
            last_answer: Some(t0 + secs(600)),
            ..Reading::default()
        };
        assert_eq!(e.evaluate(&last, t0 + secs(660), w0).len(), 1);
        assert!(e.evaluate(&last, t0 + secs(1259), w0).is_empty());
        let again = e.evaluate(&last, t0 + secs(1260), w0);
        assert_eq!(
            rules(&again),
            [(UNREACHABLE_RULE.to_string(), AlertStatus::Firing, true)]
        );
    }

    #[test]
    fn shipping_stalled_fires_on_an_old_line_and_resolves_only_with_progress() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = evaluator(None, t0);
        let ok = |age: u64, settled: u64| Reading {
            last_answer: Some(t0 + secs(1000)),
            oldest_unacknowledged: Some(secs(age)),
            documents_settled: settled,
            ..Reading::default()
        };
        assert!(e.evaluate(&ok(299, 10), t0 + secs(1000), w0).is_empty());
        let fired = e.evaluate(&ok(300, 10), t0 + secs(1001), w0);
        assert_eq!(
            rules(&fired),
            [(STALLED_RULE.to_string(), AlertStatus::Firing, false)]
        );
        assert!(
            fired[0].plain_text().contains("waited 5m"),
            "{}",
            fired[0].plain_text()
        );
        // Young lines without any progress (a restart re-reading them): still stalled.
        assert!(e.evaluate(&ok(3, 10), t0 + secs(1002), w0).is_empty());
        assert_eq!(e.firing(), 1);
        let resolved = e.evaluate(&ok(3, 11), t0 + secs(1003), w0);
        assert_eq!(
            rules(&resolved),
            [(STALLED_RULE.to_string(), AlertStatus::Resolved, false)]
        );
    }

    #[test]
    fn a_stalled_alert_with_nothing_left_to_ship_resolves_after_the_threshold() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = SelfEvaluator::new(
            SelfMonitoringSettings {
                shipping_stalled: Some(secs(300)),
                ..SelfMonitoringSettings::default()
            },
            ctx(None),
            "host-1".into(),
            t0,
        );
        let stuck = Reading {
            last_answer: Some(t0 + secs(400)),
            oldest_unacknowledged: Some(secs(301)),
            ..Reading::default()
        };
        assert_eq!(e.evaluate(&stuck, t0 + secs(400), w0).len(), 1);
        let empty = Reading {
            last_answer: Some(t0 + secs(400)),
            ..Reading::default()
        };
        assert!(e.evaluate(&empty, t0 + secs(401), w0).is_empty());
        assert!(e.evaluate(&empty, t0 + secs(700), w0).is_empty());
        assert_eq!(e.evaluate(&empty, t0 + secs(701), w0).len(), 1);
    }

    #[test]
    fn dead_letters_fire_with_how_many_and_where_and_resolve_after_the_quiet_period() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = evaluator(None, t0);
        let letters = |n: u64| Reading {
            last_answer: Some(t0 + secs(1000)),
            dead_letters: n,
            dead_letter_dir: Some("/data/dead-letters".into()),
            ..Reading::default()
        };
        assert!(e.evaluate(&letters(0), t0 + secs(1), w0).is_empty());
        let fired = e.evaluate(&letters(3), t0 + secs(2), w0);
        assert_eq!(
            rules(&fired),
            [(DEAD_LETTERS_RULE.to_string(), AlertStatus::Firing, false)]
        );
        let text = fired[0].plain_text();
        assert!(
            text.contains("3 document(s) written to the dead-letter file in /data/dead-letters"),
            "{text}"
        );
        assert_eq!(fired[0].count, 3);
        // More within the quiet period push the resolution back.
        assert!(e.evaluate(&letters(5), t0 + secs(200), w0).is_empty());
        assert!(e.evaluate(&letters(5), t0 + secs(499), w0).is_empty());
        let resolved = e.evaluate(&letters(5), t0 + secs(500), w0);
        assert_eq!(
            rules(&resolved),
            [(DEAD_LETTERS_RULE.to_string(), AlertStatus::Resolved, false)]
        );
        assert_eq!(resolved[0].total, 5);
        assert!(e.evaluate(&letters(5), t0 + secs(900), w0).is_empty());
        assert_eq!(
            e.evaluate(&letters(6), t0 + secs(901), w0).len(),
            1,
            "a new episode"
        );
    }

    fn saved(rule: &str, group: &str, ago: i64) -> SavedAlert {
        SavedAlert {
            rule: rule.into(),
            source: "shipper".into(),
            group: group.into(),
            since: Utc::now() - chrono::Duration::seconds(ago + 60),
            last_notified: Utc::now() - chrono::Duration::seconds(ago),
            total: 0,
            last_error: None,
        }
    }

    #[test]
    fn a_restored_alert_is_not_announced_again_and_resolves_once_when_it_is_over() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = evaluator(Some(secs(3600)), t0);
        assert!(e.restore(&saved(UNREACHABLE_RULE, "host-1", 1800), t0));
        assert!(!e.restore(&saved(UNREACHABLE_RULE, "other-host", 0), t0));
        assert!(!e.restore(&saved("Heartbeat silent", "host-1", 0), t0));
        let down = Reading::default();
        // Nothing answered since the restart: still firing, not announced, no resolution.
        assert!(e.evaluate(&down, t0 + secs(1), w0).is_empty());
        assert!(e.evaluate(&down, t0 + secs(100), w0).is_empty());
        // The reminder comes an hour after the last announcement, before the restart.
        assert!(e.evaluate(&down, t0 + secs(1795), w0).is_empty());
        let reminder = e.evaluate(&down, t0 + secs(1801), w0);
        assert_eq!(
            rules(&reminder),
            [(UNREACHABLE_RULE.to_string(), AlertStatus::Firing, true)]
        );
        let back = Reading {
            last_answer: Some(t0 + secs(1802)),
            ..Reading::default()
        };
        let resolved = e.evaluate(&back, t0 + secs(1802), w0);
        assert_eq!(
            rules(&resolved),
            [(UNREACHABLE_RULE.to_string(), AlertStatus::Resolved, false)]
        );
    }

    #[test]
    fn rules_turned_off_neither_fire_nor_take_back_saved_alerts() {
        let t0 = Instant::now();
        let mut e = SelfEvaluator::new(
            SelfMonitoringSettings::default(),
            ctx(None),
            "host-1".into(),
            t0,
        );
        assert!(!e.restore(&saved(STALLED_RULE, "host-1", 0), t0));
        let bad = Reading {
            oldest_unacknowledged: Some(secs(10_000)),
            dead_letters: 9,
            ..Reading::default()
        };
        assert!(e.evaluate(&bad, t0 + secs(10_000), Utc::now()).is_empty());
    }

    #[test]
    fn heartbeat_silent_fires_without_fresh_checks_while_elasticsearch_answers_and_resolves_on_a_fresh_one(
    ) {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut h = HeartbeatSilence::new(
            secs(120),
            "heartbeat-*".into(),
            ctx(None),
            "host-1".into(),
            t0,
        );
        // No check ever: counted from the start.
        assert!(h
            .evaluate(HeartbeatPoll::Answered(None), t0 + secs(119), w0)
            .is_empty());
        // A failed poll says nothing.
        assert!(h
            .evaluate(HeartbeatPoll::Failed, t0 + secs(500), w0)
            .is_empty());
        let fired = h.evaluate(HeartbeatPoll::Answered(None), t0 + secs(120), w0);
        assert_eq!(
            rules(&fired),
            [(HEARTBEAT_RULE.to_string(), AlertStatus::Firing, false)]
        );
        assert!(fired[0].kibana_link.ends_with("didban-uptime"));
        assert!(h
            .evaluate(HeartbeatPoll::Failed, t0 + secs(121), w0)
            .is_empty());
        let stale = HeartbeatPoll::Answered(Some(w0 - chrono::Duration::seconds(200)));
        assert!(
            h.evaluate(stale, t0 + secs(122), w0).is_empty(),
            "still silent"
        );
        let fresh = HeartbeatPoll::Answered(Some(w0 - chrono::Duration::seconds(5)));
        let resolved = h.evaluate(fresh, t0 + secs(123), w0);
        assert_eq!(
            rules(&resolved),
            [(HEARTBEAT_RULE.to_string(), AlertStatus::Resolved, false)]
        );
        // An old newest check fires at once, from when it was.
        let fired = h.evaluate(stale, t0 + secs(124), w0);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].since, w0 - chrono::Duration::seconds(200));
    }
}
