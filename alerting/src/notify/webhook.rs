//! The generic JSON webhook: `POST` of [`Notification::webhook_payload`] (schema in
//! the crate's README). Any 2xx is success; 408, 429 and 5xx are retried; other answers are not.

use super::{retry_after_header, DeliveryError};
use crate::channels::WebhookUrl;
use crate::message::Notification;

pub(crate) struct WebhookSender {
    url: WebhookUrl,
    http: reqwest::Client,
}

impl WebhookSender {
    pub(crate) fn new(url: WebhookUrl, http: reqwest::Client) -> Self {
        WebhookSender { url, http }
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let response = self
            .http
            .post(self.url.0.clone())
            .json(&n.webhook_payload())
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest("webhook", e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(DeliveryError::from_status(
            status,
            retry_after_header(response.headers()),
            format!("webhook {} answered {status}", self.url.shown()),
        ))
    }
}
