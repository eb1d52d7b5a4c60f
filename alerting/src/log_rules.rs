//! Log-stream rules: a count of matching documents in a sliding window, per service.
//!
//! An instance (one rule, one service) fires the moment its count reaches the threshold,
//! and resolves once the count has stayed below it for the rule's `resolve_after`: a rate
//! hovering around the threshold then gives one alert, not a flapping pair every minute.
//!
//! Documents are counted when read, but a document whose own `@timestamp` is older than the
//! window is not counted: after a restart the shipper reads its backlog at full speed, and
//! yesterday's errors arriving in one second are not a burst.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::LogRule;
use super::message::{kibana, AlertSource, AlertStatus, LastError, Notification};
use super::state::SavedAlert;
use super::tap::LogEvent;
use super::telemetry as m;
use super::window::SlidingCount;
use super::MessageContext;

/// Instances per rule at most: services are few, so more means a runaway `service.name`;
/// new groups beyond it are ignored (and counted) rather than growing memory without bound.
const MAX_INSTANCES_PER_RULE: usize = 1000;
/// Leeway for clocks and the time a line takes to reach the shipper.
const STALE_SLACK: Duration = Duration::from_secs(5);

struct Instance {
    window: SlidingCount,
    last: LastError,
    firing: Option<Firing>,
}

struct Firing {
    since: DateTime<Utc>,
    total: u64,
    below_since: Option<Instant>,
    last_sent: Instant,
}

/// Evaluates every log rule over the events the tap sends.
pub(crate) struct LogRuleEvaluator {
    rules: Vec<LogRule>,
    instances: HashMap<(usize, String), Instance>,
    ctx: MessageContext,
}

impl LogRuleEvaluator {
    pub(crate) fn new(rules: Vec<LogRule>, ctx: MessageContext) -> Self {
        LogRuleEvaluator {
            rules,
            instances: HashMap::new(),
            ctx,
        }
    }

    /// Takes back an alert that was firing when the process stopped: it goes on firing
    /// without a new announcement (reminders on its schedule) and resolves, with its
    /// resolution message, once the rule's count has stayed below the threshold for
    /// `resolve_after`. `false` when no rule of that name is configured.
    pub(crate) fn restore(&mut self, saved: &SavedAlert, now: Instant) -> bool {
        let Some(index) = self.rules.iter().position(|r| r.name == saved.rule) else {
            return false;
        };
        let rule = &self.rules[index];
        self.instances.insert(
            (index, saved.group.clone()),
            Instance {
                window: SlidingCount::new(rule.window),
                last: saved.last_error().unwrap_or_default(),
                firing: Some(Firing {
                    since: saved.since,
                    total: saved.total,
                    below_since: None,
                    last_sent: saved.last_notified_instant(now),
                }),
            },
        );
        true
    }

    /// Counts one event; returns the notifications of instances it made fire.
    pub(crate) fn observe(
        &mut self,
        event: LogEvent,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let written = event
            .timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        for (index, rule) in self.rules.iter().enumerate() {
            if index >= 64 || event.rules & (1 << index) == 0 {
                continue;
            }
            if let Some(at) = written {
                let age = (wall - at).to_std().unwrap_or_default();
                if age > rule.window + STALE_SLACK {
                    metrics::counter!(m::EVENTS_STALE).increment(1);
                    continue;
                }
            }
            let key = (index, event.group.clone());
            if !self.instances.contains_key(&key) {
                let of_rule = self.instances.keys().filter(|(i, _)| *i == index).count();
                if of_rule >= MAX_INSTANCES_PER_RULE {
                    metrics::counter!(m::GROUPS_REFUSED).increment(1);
                    continue;
                }
            }
            let instance = self.instances.entry(key).or_insert_with(|| Instance {
                window: SlidingCount::new(rule.window),
                last: LastError::default(),
                firing: None,
            });
            instance.window.add(now, 1);
            instance.last = LastError {
                message: event
                    .error_message
                    .clone()
                    .or_else(|| event.message.clone()),
                error_type: event.error_type.clone(),
                transaction_id: event.transaction_id.clone(),
                timestamp: event.timestamp.clone(),
            };
            let count = instance.window.count(now);
            match &mut instance.firing {
                Some(f) => {
                    f.total += 1;
                    if count >= rule.threshold {
                        f.below_since = None;
                    }
                }
                None if count >= rule.threshold => {
                    instance.firing = Some(Firing {
                        since: wall,
                        total: count,
                        below_since: None,
                        last_sent: now,
                    });
                    metrics::counter!(m::TRANSITIONS, "rule" => rule.name.clone(), "status" => "firing").increment(1);
                    out.push(self.ctx.log_notification(
                        rule,
                        &event.group,
                        instance,
                        AlertStatus::Firing,
                        false,
                        count,
                        wall,
                    ));
                }
                None => {}
            }
        }
        out
    }

    /// Time passing: resolutions, reminders, and forgetting quiet instances.
    pub(crate) fn tick(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        let reminder = self.ctx.reminder_interval;
        for ((index, group), instance) in self.instances.iter_mut() {
            let rule = &self.rules[*index];
            let count = instance.window.count(now);
            let Some(f) = &mut instance.firing else {
                continue;
            };
            if count >= rule.threshold {
                f.below_since = None;
            } else {
                let below = *f.below_since.get_or_insert(now);
                if now.saturating_duration_since(below) >= rule.resolve_after {
                    metrics::counter!(m::TRANSITIONS, "rule" => rule.name.clone(), "status" => "resolved").increment(1);
                    out.push(self.ctx.log_notification(
                        rule,
                        group,
                        instance,
                        AlertStatus::Resolved,
                        false,
                        count,
                        wall,
                    ));
                    instance.firing = None;
                    continue;
                }
            }
            if let Some(every) = reminder {
                if now.saturating_duration_since(f.last_sent) >= every {
                    f.last_sent = now;
                    out.push(self.ctx.log_notification(
                        rule,
                        group,
                        instance,
                        AlertStatus::Firing,
                        true,
                        count,
                        wall,
                    ));
                }
            }
        }
        self.instances
            .retain(|_, i| i.firing.is_some() || !i.window.is_empty(now));
        let firing = self
            .instances
            .values()
            .filter(|i| i.firing.is_some())
            .count();
        metrics::gauge!(m::FIRING, "source" => "logs").set(firing as f64);
        out
    }
}

impl MessageContext {
    #[allow(clippy::too_many_arguments)]
    fn log_notification(
        &self,
        rule: &LogRule,
        group: &str,
        instance: &Instance,
        status: AlertStatus,
        reminder: bool,
        count: u64,
        wall: DateTime<Utc>,
    ) -> Notification {
        let (since, total) = instance
            .firing
            .as_ref()
            .map_or((wall, count), |f| (f.since, f.total));
        let kibana_link = match &instance.last.transaction_id {
            Some(tx) => kibana::discover_transaction(&self.kibana_url, tx),
            None => kibana::dashboard(&self.kibana_url, kibana::SERVICES_DASHBOARD),
        };
        Notification {
            status,
            reminder,
            rule: rule.name.clone(),
            source: AlertSource::Logs,
            group_field: "service",
            group: group.to_string(),
            condition: describe(rule),
            since,
            resolved_at: (status == AlertStatus::Resolved).then_some(wall),
            count,
            total,
            value: None,
            last_error: Some(instance.last.clone()),
            url: None,
            kibana_link,
            channels: rule.channels.clone(),
            timezone: self.timezone,
            suppressed_before: 0,
            test: false,
        }
    }
}

/// The rule in words: `≥ 5 documents (log.category SystemError) within 1m`.
pub(crate) fn describe(rule: &LogRule) -> String {
    let f = &rule.filter;
    let mut parts = Vec::new();
    if let Some(s) = &f.service {
        parts.push(format!("service {s}"));
    }
    if let Some(d) = &f.dataset {
        parts.push(format!("dataset {d}"));
    }
    if let Some(c) = &f.category {
        parts.push(format!("{} {c}", schema::field::LOG_CATEGORY));
    }
    if let Some(l) = &f.level {
        parts.push(format!("{} {l}", schema::field::LOG_LEVEL));
    }
    let filter = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    format!(
        "≥ {} documents{filter} within {}",
        rule.threshold,
        humantime::format_duration(rule.window)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuleFilter;

    fn rule(threshold: u64, window_s: u64, resolve_s: u64) -> LogRule {
        LogRule {
            name: "SystemError burst".into(),
            filter: RuleFilter {
                category: Some("SystemError".into()),
                ..RuleFilter::default()
            },
            threshold,
            window: Duration::from_secs(window_s),
            resolve_after: Duration::from_secs(resolve_s),
            channels: None,
        }
    }

    fn ctx(reminder: Option<Duration>) -> MessageContext {
        MessageContext {
            kibana_url: url::Url::parse("http://localhost:5601").unwrap(),
            timezone: chrono_tz::Asia::Tehran,
            reminder_interval: reminder,
        }
    }

    fn event(group: &str, tx: &str, timestamp: Option<String>) -> LogEvent {
        LogEvent {
            rules: 1,
            group: group.into(),
            timestamp,
            message: Some("request failed".into()),
            error_type: Some("Timeout".into()),
            error_message: Some("upstream timed out".into()),
            transaction_id: Some(tx.into()),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_burst_fires_once_per_service_and_resolves_once_after_the_quiet_period() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = LogRuleEvaluator::new(vec![rule(5, 60, 30)], ctx(None));
        let mut fired = Vec::new();
        for i in 0..12 {
            fired.extend(e.observe(event("payment", &format!("tx-{i}"), None), t0, w0));
        }
        for i in 0..5 {
            fired.extend(e.observe(event("reservation", &format!("r-{i}"), None), t0, w0));
        }
        assert_eq!(fired.len(), 2, "one firing per service");
        let pay = fired.iter().find(|n| n.group == "payment").unwrap();
        assert_eq!(pay.count, 5, "fired at the fifth document");
        assert_eq!(pay.status, AlertStatus::Firing);
        assert!(pay.kibana_link.contains("tx-4"), "{}", pay.kibana_link);

        assert!(e.tick(t0 + secs(59), w0).is_empty(), "still in the window");
        // The window empties at 60 s; resolution waits 30 s more.
        assert!(e.tick(t0 + secs(60), w0).is_empty());
        assert!(e.tick(t0 + secs(89), w0).is_empty());
        let resolved = e.tick(t0 + secs(90), w0 + chrono::Duration::seconds(90));
        assert_eq!(resolved.len(), 2);
        let pay = resolved.iter().find(|n| n.group == "payment").unwrap();
        assert_eq!(pay.status, AlertStatus::Resolved);
        assert_eq!(pay.total, 12);
        assert_eq!(
            pay.last_error.as_ref().unwrap().transaction_id.as_deref(),
            Some("tx-11")
        );
        assert!(e.tick(t0 + secs(200), w0).is_empty(), "resolved only once");
        assert!(e.instances.is_empty(), "quiet instances are forgotten");
    }

    #[test]
    fn a_rate_hovering_at_the_threshold_does_not_flap() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = LogRuleEvaluator::new(vec![rule(3, 10, 30)], ctx(None));
        let mut sent = Vec::new();
        // One error every 4 s: the count in a 10 s window is 3 right after each error and 2
        // two seconds later, forever crossing the threshold; never quiet for 30 s.
        for k in 0..40u64 {
            let now = t0 + secs(4 * k);
            sent.extend(e.observe(event("payment", "tx", None), now, w0));
            let later = now + secs(2);
            assert!(
                k < 2
                    || e.instances
                        .values()
                        .next()
                        .unwrap()
                        .window
                        .clone()
                        .count(later)
                        < 3
            );
            sent.extend(e.tick(later, w0));
        }
        assert_eq!(sent.len(), 1, "one firing, no flapping");
    }

    #[test]
    fn old_documents_from_a_backlog_are_not_a_burst() {
        let t0 = Instant::now();
        let wall = Utc::now();
        let old = (wall - chrono::Duration::hours(3))
            .with_timezone(&chrono_tz::Asia::Tehran)
            .to_rfc3339();
        let fresh = wall.with_timezone(&chrono_tz::Asia::Tehran).to_rfc3339();
        let mut e = LogRuleEvaluator::new(vec![rule(3, 60, 30)], ctx(None));
        let mut sent = Vec::new();
        for _ in 0..10 {
            sent.extend(e.observe(event("payment", "tx", Some(old.clone())), t0, wall));
        }
        assert!(sent.is_empty());
        for _ in 0..3 {
            sent.extend(e.observe(event("payment", "tx", Some(fresh.clone())), t0, wall));
        }
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn reminders_repeat_a_firing_alert_at_the_interval() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = LogRuleEvaluator::new(vec![rule(1, 3600, 60)], ctx(Some(secs(600))));
        assert_eq!(e.observe(event("payment", "tx", None), t0, w0).len(), 1);
        assert!(e.tick(t0 + secs(599), w0).is_empty());
        let again = e.tick(t0 + secs(600), w0);
        assert_eq!(again.len(), 1);
        assert!(again[0].reminder);
        assert!(again[0].title().starts_with("[STILL FIRING]"));
        assert!(e.tick(t0 + secs(601), w0).is_empty());
    }

    #[test]
    fn a_restored_alert_goes_on_silently_and_resolves_once_after_the_quiet_period() {
        let t0 = Instant::now();
        let w0 = Utc::now();
        let mut e = LogRuleEvaluator::new(vec![rule(3, 10, 5)], ctx(None));
        let saved = SavedAlert {
            rule: "SystemError burst".into(),
            source: "logs".into(),
            group: "payment".into(),
            since: w0 - chrono::Duration::minutes(3),
            last_notified: w0 - chrono::Duration::minutes(3),
            total: 9,
            last_error: None,
        };
        assert!(e.restore(&saved, t0));
        let mut other = saved.clone();
        other.rule = "Gone".into();
        assert!(!e.restore(&other, t0), "no such rule any more");
        // The burst goes on after the restart: no new firing message.
        let mut sent = Vec::new();
        for _ in 0..5 {
            sent.extend(e.observe(event("payment", "tx", None), t0, w0));
        }
        sent.extend(e.tick(t0 + secs(1), w0));
        assert!(
            sent.is_empty(),
            "{:?}",
            sent.iter().map(|n| n.title()).collect::<Vec<_>>()
        );
        // The window empties at 10 s, the resolution comes 5 s later, once.
        assert!(e.tick(t0 + secs(10), w0).is_empty());
        let resolved = e.tick(t0 + secs(15), w0);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
        assert_eq!(resolved[0].since, saved.since);
        assert_eq!(resolved[0].total, 14, "counted on from the saved total");
        assert!(e.tick(t0 + secs(30), w0).is_empty());
    }

    #[test]
    fn rules_are_described_in_words() {
        let mut r = rule(5, 60, 60);
        r.filter.service = Some("payment".into());
        assert_eq!(
            describe(&r),
            "≥ 5 documents (service payment, log.category SystemError) within 1m"
        );
    }
}
