//! Slack incoming webhooks (<https://api.slack.com/messaging/webhooks>).
//!
//! A JSON `POST` of `text` (the notification and fallback text) and Block Kit `blocks`;
//! Slack answers `200 ok`, a `4xx` with an error word (`invalid_payload`, `no_service`:
//! retrying cannot help) or `429` with `Retry-After`.

use super::{retry_after_header, DeliveryError};
use crate::channels::WebhookUrl;
use crate::message::Notification;

pub(crate) struct SlackSender {
    url: WebhookUrl,
    http: reqwest::Client,
}

impl SlackSender {
    pub(crate) fn new(url: WebhookUrl, http: reqwest::Client) -> Self {
        SlackSender { url, http }
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let response = self
            .http
            .post(self.url.0.clone())
            .json(&n.slack_payload())
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest("Slack", e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = retry_after_header(response.headers());
        let body = response.text().await.unwrap_or_default();
        Err(DeliveryError::from_status(
            status,
            retry_after,
            format!(
                "Slack webhook {} answered {status}: {}",
                self.url.shown(),
                body.chars().take(200).collect::<String>()
            ),
        ))
    }
}
