//! Uptime rules: Heartbeat's checks, read back from Elasticsearch every few seconds.
//!
//! One search per poll: the recent checks of every monitor (`terms` on `monitor.id`, the
//! newest checks by `top_hits`) and the p95 of `monitor.duration.us` over the latency window,
//! of up checks only (a down check's duration is its timeout, which says nothing about
//! speed). A check counts when its event carries `summary` (Heartbeat writes it on the last
//! event of a check) and is not followed by a retry (`summary.final_attempt: false`), so a
//! monitor with `max_attempts: 2` is not counted down twice per check.
//!
//! - Down: the newest `down_checks` checks are all down fires; a newest check up resolves.
//! - Slow: p95 above the threshold fires (given enough up checks to mean something); it
//!   resolves below 90 % of the threshold, so a p95 sitting at the threshold does not flap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::config::UptimeSettings;
use super::message::{kibana, AlertSource, AlertStatus, LastError, Notification};
use super::query_client::QueryClient;
use super::state::SavedAlert;
use super::telemetry as m;
use super::MessageContext;

/// How far back checks are read: enough for the down streak of any sensible schedule.
const MIN_LOOKBACK: Duration = Duration::from_secs(15 * 60);

/// One check of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub(crate) at: Option<DateTime<Utc>>,
    pub(crate) up: bool,
    pub(crate) error: Option<String>,
}

/// What one poll says about one monitor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MonitorView {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) url: Option<String>,
    /// Final checks, newest first.
    pub(crate) checks: Vec<Check>,
    /// p95 of the up checks' durations over the latency window, in microseconds.
    pub(crate) p95_us: Option<f64>,
    pub(crate) up_checks_in_window: u64,
}

/// Every Heartbeat field the uptime rules query or read. The static checks of the stack
/// keep it in agreement with the fields Heartbeat 9.2 maps; a test below keeps it in
/// agreement with [`query`].
pub const HEARTBEAT_FIELDS_USED: &[&str] = &[
    "@timestamp",
    "monitor.id",
    "monitor.name",
    "monitor.status",
    "monitor.duration.us",
    "url.full",
    "error.message",
    "summary.status",
    "summary.down",
    "summary.final_attempt",
];

/// The search body of one poll.
pub(crate) fn query(settings: &UptimeSettings) -> Value {
    let lookback = settings.latency_window.max(MIN_LOOKBACK).as_secs();
    json!({
        "size": 0,
        "query": {"bool": {"filter": [
            {"range": {"@timestamp": {"gte": format!("now-{lookback}s")}}},
            {"exists": {"field": "monitor.status"}}
        ]}},
        "aggs": {"monitors": {
            "terms": {"field": "monitor.id", "size": 1000},
            "aggs": {
                "latest": {"top_hits": {
                    // Room for the retried attempts and intermediate events that are skipped.
                    "size": settings.down_checks * 3 + 3,
                    "sort": [{"@timestamp": {"order": "desc"}}]
                }},
                "latency": {
                    "filter": {"bool": {"filter": [
                        {"range": {"@timestamp": {"gte": format!("now-{}s", settings.latency_window.as_secs().max(1))}}},
                        {"term": {"monitor.status": "up"}}
                    ]}},
                    "aggs": {"p95": {"percentiles": {"field": "monitor.duration.us", "percents": [95]}}}
                }
            }
        }}
    })
}

/// A field of a `_source`, whether written as nested objects or with dotted keys.
pub(crate) fn field<'a>(source: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = source.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut split = path.len();
    while let Some(dot) = path[..split].rfind('.') {
        if let Some(inner) = obj.get(&path[..dot]) {
            if let Some(v) = field(inner, &path[dot + 1..]) {
                return Some(v);
            }
        }
        split = dot;
    }
    None
}

fn text(source: &Value, path: &str) -> Option<String> {
    field(source, path)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The monitors of a search response.
pub(crate) fn parse_response(body: &Value) -> Result<Vec<MonitorView>, String> {
    let buckets = body
        .pointer("/aggregations/monitors/buckets")
        .and_then(Value::as_array)
        .ok_or("the response has no aggregations.monitors.buckets")?;
    let mut out = Vec::with_capacity(buckets.len());
    for b in buckets {
        let Some(id) = b.get("key").and_then(Value::as_str) else {
            continue;
        };
        let hits = b
            .pointer("/latest/hits/hits")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut view = MonitorView {
            id: id.to_string(),
            name: None,
            url: None,
            checks: Vec::new(),
            p95_us: b
                .pointer("/latency/p95/values/95.0")
                .and_then(Value::as_f64),
            up_checks_in_window: b
                .pointer("/latency/doc_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        };
        for hit in hits {
            let Some(src) = hit.get("_source") else {
                continue;
            };
            view.name = view.name.or_else(|| text(src, "monitor.name"));
            view.url = view.url.or_else(|| text(src, "url.full"));
            let Some(summary) = field(src, "summary") else {
                continue; // not the last event of its check
            };
            if field(summary, "final_attempt").and_then(Value::as_bool) == Some(false) {
                continue; // a retry of this check follows
            }
            let status = text(src, "monitor.status")
                .or_else(|| text(summary, "status"))
                .unwrap_or_default();
            let up = match status.as_str() {
                "up" => true,
                "down" => false,
                _ => field(summary, "down").and_then(Value::as_u64).unwrap_or(0) == 0,
            };
            view.checks.push(Check {
                at: text(src, "@timestamp")
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc)),
                up,
                error: text(src, "error.message"),
            });
        }
        out.push(view);
    }
    Ok(out)
}

#[derive(Debug)]
struct Firing {
    since: DateTime<Utc>,
    /// Down checks counted so far (uptime), or polls above the threshold (latency).
    total: u64,
    newest: Option<DateTime<Utc>>,
    last_sent: Instant,
    error: Option<String>,
}

#[derive(Debug, Default)]
struct MonitorState {
    down: Option<Firing>,
    slow: Option<Firing>,
}

/// The uptime and latency rules' state across polls.
pub(crate) struct UptimeEvaluator {
    settings: UptimeSettings,
    ctx: MessageContext,
    monitors: HashMap<String, MonitorState>,
    /// Alerts firing when the process stopped, by (rule, monitor as the messages name it):
    /// taken back by the monitor's state when a poll first shows it.
    restored: HashMap<(String, String), SavedAlert>,
}

impl UptimeEvaluator {
    pub(crate) fn new(settings: UptimeSettings, ctx: MessageContext) -> Self {
        UptimeEvaluator {
            settings,
            ctx,
            monitors: HashMap::new(),
            restored: HashMap::new(),
        }
    }

    /// Keeps an alert that was firing when the process stopped until a poll shows its
    /// monitor: then a monitor still down (or slow) goes on without a new announcement,
    /// and one that is up again gets its resolution. `false` when the rule is off now.
    pub(crate) fn restore(&mut self, saved: &SavedAlert) -> bool {
        let on = match saved.rule.as_str() {
            UPTIME_RULE => true,
            LATENCY_RULE => self.settings.latency_threshold.is_some(),
            _ => false,
        };
        if on {
            self.restored
                .insert((saved.rule.clone(), saved.group.clone()), saved.clone());
        }
        on
    }

    /// The saved alert of `rule` for the monitor of `view`, as its firing state.
    fn take_restored(&mut self, rule: &str, view: &MonitorView, now: Instant) -> Option<Firing> {
        if self.restored.is_empty() {
            return None;
        }
        let saved = self
            .restored
            .remove(&(rule.to_string(), monitor_label(view)))?;
        Some(Firing {
            since: saved.since,
            total: saved.total,
            // Down checks before the last announcement were counted then.
            newest: Some(saved.last_notified),
            last_sent: saved.last_notified_instant(now),
            error: saved.last_error().and_then(|e| e.message),
        })
    }

    pub(crate) fn evaluate(
        &mut self,
        views: &[MonitorView],
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let k = self.settings.down_checks as usize;
        let (mut up_now, mut down_now) = (0u64, 0u64);
        for view in views {
            let restored_down = self.take_restored(UPTIME_RULE, view, now);
            let restored_slow = self.take_restored(LATENCY_RULE, view, now);
            let state = self.monitors.entry(view.id.clone()).or_default();
            if state.down.is_none() {
                state.down = restored_down;
            }
            if state.slow.is_none() {
                state.slow = restored_slow;
            }
            let streak = view.checks.iter().take_while(|c| !c.up).count();
            match view.checks.first() {
                Some(c) if c.up => up_now += 1,
                Some(_) => down_now += 1,
                None => {}
            }
            match &mut state.down {
                None if streak >= k => {
                    let since = view.checks[streak - 1].at.unwrap_or(wall);
                    let firing = Firing {
                        since,
                        total: streak as u64,
                        newest: view.checks[0].at,
                        last_sent: now,
                        error: view.checks[0].error.clone(),
                    };
                    out.push(self.ctx.uptime_notification(
                        self.settings.down_checks,
                        view,
                        &firing,
                        AlertStatus::Firing,
                        false,
                        streak as u64,
                        wall,
                    ));
                    metrics::counter!(m::TRANSITIONS, "rule" => UPTIME_RULE, "status" => "firing")
                        .increment(1);
                    state.down = Some(firing);
                }
                None => {}
                Some(f) => {
                    let newer = view
                        .checks
                        .iter()
                        .take_while(|c| f.newest.is_none_or(|n| c.at.is_some_and(|a| a > n)))
                        .filter(|c| !c.up)
                        .count();
                    f.total += newer as u64;
                    if let Some(first) = view.checks.first() {
                        f.newest = first.at.or(f.newest);
                        if !first.up && first.error.is_some() {
                            f.error = first.error.clone();
                        }
                    }
                    if view.checks.first().is_some_and(|c| c.up) {
                        out.push(self.ctx.uptime_notification(
                            self.settings.down_checks,
                            view,
                            f,
                            AlertStatus::Resolved,
                            false,
                            0,
                            wall,
                        ));
                        metrics::counter!(m::TRANSITIONS, "rule" => UPTIME_RULE, "status" => "resolved").increment(1);
                        state.down = None;
                    } else if let Some(every) = self.ctx.reminder_interval {
                        if now.saturating_duration_since(f.last_sent) >= every {
                            f.last_sent = now;
                            out.push(self.ctx.uptime_notification(
                                self.settings.down_checks,
                                view,
                                f,
                                AlertStatus::Firing,
                                true,
                                streak as u64,
                                wall,
                            ));
                        }
                    }
                }
            }
            if let Some(threshold) = self.settings.latency_threshold {
                let enough =
                    view.up_checks_in_window >= u64::from(self.settings.latency_min_checks);
                let threshold_us = threshold.as_micros() as f64;
                match (&mut state.slow, view.p95_us) {
                    (None, Some(p95)) if enough && p95 > threshold_us => {
                        let firing = Firing {
                            since: wall,
                            total: 1,
                            newest: None,
                            last_sent: now,
                            error: None,
                        };
                        out.push(self.ctx.latency_notification(
                            view,
                            &firing,
                            AlertStatus::Firing,
                            false,
                            p95,
                            threshold,
                            self.settings.latency_window,
                            wall,
                        ));
                        metrics::counter!(m::TRANSITIONS, "rule" => LATENCY_RULE, "status" => "firing").increment(1);
                        state.slow = Some(firing);
                    }
                    (Some(f), Some(p95)) if p95 < threshold_us * 0.9 => {
                        out.push(self.ctx.latency_notification(
                            view,
                            f,
                            AlertStatus::Resolved,
                            false,
                            p95,
                            threshold,
                            self.settings.latency_window,
                            wall,
                        ));
                        metrics::counter!(m::TRANSITIONS, "rule" => LATENCY_RULE, "status" => "resolved").increment(1);
                        state.slow = None;
                    }
                    (Some(f), Some(p95)) => {
                        f.total += 1;
                        if let Some(every) = self.ctx.reminder_interval {
                            if now.saturating_duration_since(f.last_sent) >= every {
                                f.last_sent = now;
                                out.push(self.ctx.latency_notification(
                                    view,
                                    f,
                                    AlertStatus::Firing,
                                    true,
                                    p95,
                                    threshold,
                                    self.settings.latency_window,
                                    wall,
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        metrics::gauge!(m::UPTIME_MONITORS, "status" => "up").set(up_now as f64);
        metrics::gauge!(m::UPTIME_MONITORS, "status" => "down").set(down_now as f64);
        let firing = self
            .monitors
            .values()
            .map(|s| usize::from(s.down.is_some()) + usize::from(s.slow.is_some()))
            .sum::<usize>();
        metrics::gauge!(m::FIRING, "source" => "uptime").set(firing as f64);
        out
    }
}

pub(crate) const UPTIME_RULE: &str = "Monitor down";
pub(crate) const LATENCY_RULE: &str = "Monitor slow";

impl MessageContext {
    #[allow(clippy::too_many_arguments)]
    fn uptime_notification(
        &self,
        down_checks: u32,
        view: &MonitorView,
        firing: &Firing,
        status: AlertStatus,
        reminder: bool,
        streak: u64,
        wall: DateTime<Utc>,
    ) -> Notification {
        Notification {
            status,
            reminder,
            rule: UPTIME_RULE.to_string(),
            source: AlertSource::Uptime,
            group_field: "monitor",
            group: monitor_label(view),
            condition: format!("{down_checks} consecutive checks down"),
            since: firing.since,
            resolved_at: (status == AlertStatus::Resolved).then_some(wall),
            count: streak,
            total: firing.total,
            value: None,
            last_error: firing.error.as_ref().map(|e| LastError {
                message: Some(e.clone()),
                ..LastError::default()
            }),
            url: view.url.clone(),
            kibana_link: kibana::dashboard(&self.kibana_url, kibana::UPTIME_DASHBOARD),
            channels: None,
            timezone: self.timezone,
            suppressed_before: 0,
            test: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn latency_notification(
        &self,
        view: &MonitorView,
        firing: &Firing,
        status: AlertStatus,
        reminder: bool,
        p95_us: f64,
        threshold: Duration,
        window: Duration,
        wall: DateTime<Utc>,
    ) -> Notification {
        Notification {
            status,
            reminder,
            rule: LATENCY_RULE.to_string(),
            source: AlertSource::Latency,
            group_field: "monitor",
            group: monitor_label(view),
            condition: format!(
                "p95 check duration over {} above {}",
                humantime::format_duration(window),
                humantime::format_duration(threshold)
            ),
            since: firing.since,
            resolved_at: (status == AlertStatus::Resolved).then_some(wall),
            count: view.up_checks_in_window,
            total: firing.total,
            value: Some(format!("p95 {:.0} ms", p95_us / 1000.0)),
            last_error: None,
            url: view.url.clone(),
            kibana_link: kibana::dashboard(&self.kibana_url, kibana::UPTIME_DASHBOARD),
            channels: None,
            timezone: self.timezone,
            suppressed_before: 0,
            test: false,
        }
    }
}

fn monitor_label(view: &MonitorView) -> String {
    match &view.name {
        Some(name) if name != &view.id => format!("{name} ({})", view.id),
        _ => view.id.clone(),
    }
}

/// Why a poll gave no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PollError {
    /// No Heartbeat index or data stream yet: normal until Heartbeat's first check.
    #[error("no index matches {0} yet")]
    NoIndex(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs one search against Elasticsearch.
pub(crate) async fn poll(
    client: &QueryClient,
    settings: &UptimeSettings,
) -> Result<Vec<MonitorView>, PollError> {
    let path = format!(
        "/{}/_search?ignore_unavailable=true&allow_no_indices=true",
        settings.index
    );
    let body = bytes::Bytes::from(query(settings).to_string());
    let reply = client
        .post_json(&path, body)
        .await
        .map_err(PollError::Failed)?;
    let parsed: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if reply.status == 404
        && parsed.pointer("/error/type").and_then(Value::as_str)
            == Some("index_not_found_exception")
    {
        return Err(PollError::NoIndex(settings.index.clone()));
    }
    if reply.status != 200 {
        let reason = parsed
            .pointer("/error/reason")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        let kind = parsed
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("error");
        return Err(PollError::Failed(format!(
            "{} answered {}: {kind}: {reason}",
            reply.node, reply.status
        )));
    }
    if matched_no_index(&parsed) {
        return Err(PollError::NoIndex(settings.index.clone()));
    }
    parse_response(&parsed).map_err(PollError::Failed)
}

/// Whether a 200 answer is Elasticsearch's empty search response: with
/// `allow_no_indices=true`, a pattern that matches no index searches no shard and the
/// answer carries no `aggregations` at all (not empty buckets), and no hit. That is "no
/// Heartbeat data yet", like the 404 of an older node, not a broken answer.
fn matched_no_index(body: &Value) -> bool {
    let no_hits = body
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    body.get("aggregations").is_none() && no_hits
}

#[cfg(test)]
mod tests {
    /// Field names in a query body: `"field": ...` values and the keys of `range`, `term`
    /// and `sort` clauses.
    fn queried_fields(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, val) in map {
                    match (k.as_str(), val) {
                        ("field", Value::String(f)) => out.push(f.clone()),
                        ("range" | "term", Value::Object(inner)) => {
                            out.extend(inner.keys().cloned())
                        }
                        ("sort", Value::Array(items)) => {
                            for item in items {
                                if let Value::Object(m) = item {
                                    out.extend(m.keys().cloned());
                                }
                            }
                        }
                        _ => {}
                    }
                    queried_fields(val, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| queried_fields(i, out)),
            _ => {}
        }
    }

    #[test]
    fn every_field_the_query_uses_is_declared() {
        let mut fields = Vec::new();
        queried_fields(&query(&settings()), &mut fields);
        assert!(fields.len() >= 4, "{fields:?}");
        for f in fields {
            assert!(
                HEARTBEAT_FIELDS_USED.contains(&f.as_str()),
                "{f} is not in HEARTBEAT_FIELDS_USED"
            );
        }
    }

    use super::*;

    #[test]
    fn the_empty_search_response_means_no_index_yet() {
        // Elasticsearch 9.2's answer on heartbeat-* before Heartbeat's first check.
        let empty = json!({"took": 0, "timed_out": false,
            "_shards": {"total": 0, "successful": 0, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": null, "hits": []}});
        assert!(matched_no_index(&empty));
        // Indices that hold nothing matching still answer with (empty) buckets.
        let buckets = json!({"hits": {"hits": []}, "aggregations": {"monitors": {"buckets": []}}});
        assert!(!matched_no_index(&buckets));
        assert_eq!(parse_response(&buckets).unwrap(), vec![]);
        // Anything else without aggregations stays an error.
        assert!(!matched_no_index(&json!({"error": "x"})));
    }

    #[tokio::test]
    async fn polling_before_heartbeats_first_check_is_no_data_not_an_error() {
        let es = es_test_server::EsTestServer::start(es_test_server::ServerConfig::default())
            .await
            .unwrap();
        let url = url::Url::parse(&es.url()).unwrap();
        let client =
            QueryClient::new(&crate::query_client::QueryClientConfig::new(vec![url])).unwrap();
        match poll(&client, &settings()).await {
            Err(PollError::NoIndex(index)) => assert_eq!(index, "heartbeat-*"),
            other => panic!("expected no index yet, got {other:?}"),
        }
    }

    fn settings() -> UptimeSettings {
        UptimeSettings {
            index: "heartbeat-*".into(),
            interval: Duration::from_secs(5),
            down_checks: 3,
            latency_threshold: Some(Duration::from_secs(1)),
            latency_window: Duration::from_secs(300),
            latency_min_checks: 3,
        }
    }

    fn ctx() -> MessageContext {
        MessageContext {
            kibana_url: url::Url::parse("http://localhost:5601").unwrap(),
            timezone: chrono_tz::Asia::Tehran,
            reminder_interval: None,
        }
    }

    fn check(sec: i64, up: bool) -> Check {
        Check {
            at: DateTime::from_timestamp(1_700_000_000 + sec, 0),
            up,
            error: (!up).then(|| "connection refused".to_string()),
        }
    }

    fn view(checks: Vec<Check>) -> MonitorView {
        MonitorView {
            id: "payment-health".into(),
            name: Some("payment".into()),
            url: Some("http://payment:8002/health".into()),
            checks,
            p95_us: None,
            up_checks_in_window: 0,
        }
    }

    #[test]
    fn fields_are_found_nested_or_dotted() {
        let v = json!({"monitor": {"status": "up"}, "summary.final_attempt": false, "url": {"full": "x"}});
        assert_eq!(field(&v, "monitor.status"), Some(&json!("up")));
        assert_eq!(field(&v, "summary.final_attempt"), Some(&json!(false)));
        assert_eq!(field(&v, "url.full"), Some(&json!("x")));
        assert_eq!(field(&v, "monitor.id"), None);
    }

    #[test]
    fn only_final_summary_events_count_as_checks() {
        let body = json!({"aggregations": {"monitors": {"buckets": [{
            "key": "payment-health",
            "latest": {"hits": {"hits": [
                {"_source": {"@timestamp": "2026-11-26T10:00:30Z", "monitor": {"id": "payment-health", "name": "payment", "status": "down"},
                    "summary": {"up": 0, "down": 1, "status": "down", "final_attempt": true}, "error": {"message": "refused"}, "url": {"full": "http://payment:8002/health"}}},
                {"_source": {"@timestamp": "2026-11-26T10:00:29Z", "monitor": {"id": "payment-health", "status": "down"},
                    "summary": {"up": 0, "down": 1, "status": "down", "final_attempt": false}}},
                {"_source": {"@timestamp": "2026-11-26T10:00:20Z", "monitor": {"id": "payment-health", "status": "up"},
                    "summary": {"up": 1, "down": 0, "status": "up", "final_attempt": true}}},
                {"_source": {"@timestamp": "2026-11-26T10:00:19Z", "monitor": {"id": "payment-health", "status": "up"}}}
            ]}},
            "latency": {"doc_count": 4, "p95": {"values": {"95.0": 1500.0}}}
        }]}}});
        let views = parse_response(&body).unwrap();
        assert_eq!(views.len(), 1);
        let v = &views[0];
        assert_eq!(v.checks.len(), 2);
        assert!(!v.checks[0].up && v.checks[1].up);
        assert_eq!(v.checks[0].error.as_deref(), Some("refused"));
        assert_eq!(v.name.as_deref(), Some("payment"));
        assert_eq!((v.p95_us, v.up_checks_in_window), (Some(1500.0), 4));
    }

    #[test]
    fn down_k_times_fires_once_and_up_resolves_once() {
        let mut e = UptimeEvaluator::new(settings(), ctx());
        let t = Instant::now();
        let w = Utc::now();
        assert!(e
            .evaluate(
                &[view(vec![
                    check(20, false),
                    check(10, false),
                    check(0, true)
                ])],
                t,
                w
            )
            .is_empty());
        let fired = e.evaluate(
            &[view(vec![
                check(30, false),
                check(20, false),
                check(10, false),
            ])],
            t,
            w,
        );
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].status, AlertStatus::Firing);
        assert_eq!(fired[0].group, "payment (payment-health)");
        assert_eq!(fired[0].count, 3);
        assert_eq!(
            fired[0].since,
            DateTime::from_timestamp(1_700_000_010, 0).unwrap()
        );
        assert!(e
            .evaluate(
                &[view(vec![
                    check(40, false),
                    check(30, false),
                    check(20, false)
                ])],
                t,
                w
            )
            .is_empty());
        let resolved = e.evaluate(&[view(vec![check(50, true), check(40, false)])], t, w);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
        assert_eq!(resolved[0].total, 4, "down at 10, 20, 30 and 40");
        assert!(e.evaluate(&[view(vec![check(60, true)])], t, w).is_empty());
    }

    #[test]
    fn a_restored_monitor_alert_goes_on_silently_and_resolves_once_when_up() {
        let saved = SavedAlert {
            rule: UPTIME_RULE.into(),
            source: "uptime".into(),
            group: "payment (payment-health)".into(),
            since: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            last_notified: DateTime::from_timestamp(1_700_000_030, 0).unwrap(),
            total: 3,
            last_error: None,
        };
        let t = Instant::now();
        let w = Utc::now();
        let mut e = UptimeEvaluator::new(settings(), ctx());
        assert!(e.restore(&saved));
        let mut gone = saved.clone();
        gone.rule = "Something else".into();
        assert!(!e.restore(&gone));
        // Still down after the restart: no new firing message.
        let down = view(vec![check(40, false), check(30, false), check(20, false)]);
        assert!(e.evaluate(&[down], t, w).is_empty());
        let resolved = e.evaluate(&[view(vec![check(50, true), check(40, false)])], t, w);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
        assert_eq!(resolved[0].since, saved.since);
        assert_eq!(resolved[0].total, 4, "the saved 3 and the check at 40");

        // Up by the time of the first poll: the resolution at once.
        let mut e = UptimeEvaluator::new(settings(), ctx());
        assert!(e.restore(&saved));
        let resolved = e.evaluate(&[view(vec![check(50, true)])], t, w);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
        assert!(e.evaluate(&[view(vec![check(60, true)])], t, w).is_empty());
    }

    #[test]
    fn slow_monitors_fire_above_the_threshold_and_resolve_well_below_it() {
        let mut e = UptimeEvaluator::new(settings(), ctx());
        let t = Instant::now();
        let w = Utc::now();
        let mut v = view(vec![check(0, true)]);
        v.up_checks_in_window = 2;
        v.p95_us = Some(3_000_000.0);
        assert!(
            e.evaluate(std::slice::from_ref(&v), t, w).is_empty(),
            "too few checks"
        );
        v.up_checks_in_window = 30;
        let fired = e.evaluate(std::slice::from_ref(&v), t, w);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].value.as_deref(), Some("p95 3000 ms"));
        v.p95_us = Some(950_000.0);
        assert!(
            e.evaluate(std::slice::from_ref(&v), t, w).is_empty(),
            "hysteresis"
        );
        v.p95_us = Some(200_000.0);
        let resolved = e.evaluate(std::slice::from_ref(&v), t, w);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
    }

    #[test]
    fn the_query_asks_for_enough_checks_and_the_p95_of_up_checks() {
        let q = query(&settings());
        assert_eq!(q["aggs"]["monitors"]["terms"]["field"], "monitor.id");
        assert_eq!(
            q["aggs"]["monitors"]["aggs"]["latest"]["top_hits"]["size"],
            12
        );
        assert_eq!(
            q["aggs"]["monitors"]["aggs"]["latency"]["aggs"]["p95"]["percentiles"]["field"],
            "monitor.duration.us"
        );
    }
}
