//! The alert engine's metrics, named once. Labels are the channel kind, the rule name (from
//! the configuration, so a bounded set) and fixed outcome words: never a secret, never a
//! value taken from a log line.

pub(crate) const EVENTS: &str = "shipper_alert_events_total";
pub(crate) const EVENTS_DROPPED: &str = "shipper_alert_events_dropped_total";
pub(crate) const EVENTS_STALE: &str = "shipper_alert_events_stale_total";
pub(crate) const GROUPS_REFUSED: &str = "shipper_alert_groups_refused_total";
pub(crate) const TRANSITIONS: &str = "shipper_alert_transitions_total";
pub(crate) const FIRING: &str = "shipper_alert_firing";
pub(crate) const NOTIFICATIONS: &str = "shipper_alert_notifications_total";
pub(crate) const RETRIES: &str = "shipper_alert_notification_retries_total";
pub(crate) const DELIVERY_SECONDS: &str = "shipper_alert_notification_duration_seconds";
pub(crate) const UPTIME_QUERIES: &str = "shipper_alert_uptime_queries_total";
pub(crate) const UPTIME_MONITORS: &str = "shipper_alert_uptime_monitors";
pub(crate) const SILENCED: &str = "shipper_alert_notifications_silenced_total";

/// Registers descriptions, so `/metrics` explains each series.
pub(crate) fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        SILENCED,
        "Alert messages held by a silence (the alert is still evaluated and saved)."
    );
    describe_counter!(
        EVENTS,
        "Documents matching an alert rule, queued for evaluation"
    );
    describe_counter!(
        EVENTS_DROPPED,
        "Documents matching an alert rule dropped because the evaluation queue was full"
    );
    describe_counter!(
        EVENTS_STALE,
        "Documents not counted by a rule because their @timestamp is older than its window"
    );
    describe_counter!(
        GROUPS_REFUSED,
        "Documents not counted because a rule already tracks its maximum number of services"
    );
    describe_counter!(
        TRANSITIONS,
        "Alert state changes, by rule and new status (firing, resolved)"
    );
    describe_gauge!(
        FIRING,
        "Alert instances firing now, by source (logs, uptime)"
    );
    describe_counter!(
        NOTIFICATIONS,
        "Notifications by channel and outcome: sent, failed (gave up after retries or refused), suppressed (rate limit), dropped (queue full), abandoned (shutdown)"
    );
    describe_counter!(
        RETRIES,
        "Notification delivery attempts retried, by channel"
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "Time to deliver one notification, retries included, by channel"
    );
    describe_counter!(
        UPTIME_QUERIES,
        "Queries of Heartbeat's data by outcome: ok, no_data (no heartbeat index yet), error"
    );
    describe_gauge!(
        UPTIME_MONITORS,
        "Heartbeat monitors seen by the last query, by status"
    );
}
