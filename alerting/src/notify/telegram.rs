//! Telegram Bot API `sendMessage` (<https://core.telegram.org/bots/api#sendmessage>).
//!
//! `POST {api}/bot<token>/sendMessage` with a JSON body: `chat_id` (an integer, or a string
//! for `@channelname`), `text` in HTML (`parse_mode`), link previews off so the Kibana link
//! does not unfold into a card. Telegram answers `{"ok":true,...}`, or `{"ok":false,
//! "error_code":429,"parameters":{"retry_after":N}}` when flooded, which we honour.

use std::time::Duration;

use serde_json::{json, Value};

use super::DeliveryError;
use crate::channels::TelegramTarget;
use crate::message::Notification;

pub(crate) struct TelegramSender {
    target: TelegramTarget,
    http: reqwest::Client,
}

impl TelegramSender {
    pub(crate) fn new(target: TelegramTarget, http: reqwest::Client) -> Self {
        TelegramSender { target, http }
    }

    /// The request body for `n`.
    pub(crate) fn body(&self, n: &Notification) -> Value {
        let chat_id = match self.target.chat_id.parse::<i64>() {
            Ok(id) => json!(id),
            Err(_) => json!(self.target.chat_id),
        };
        json!({
            "chat_id": chat_id,
            "text": n.telegram_html(),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        })
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let url = format!(
            "{}/bot{}/sendMessage",
            self.target.api_url.as_str().trim_end_matches('/'),
            self.target.token
        );
        let response = self
            .http
            .post(url)
            .json(&self.body(n))
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest("Telegram", e))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) && answer["ok"] == json!(true) {
            return Ok(());
        }
        let description = answer["description"].as_str().unwrap_or("no description");
        let retry_after = answer
            .pointer("/parameters/retry_after")
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        let code = if (200..300).contains(&status) {
            500
        } else {
            status
        };
        Err(DeliveryError::from_status(
            code,
            retry_after,
            format!(
                "Telegram refused the message to chat {} ({status}): {description}",
                self.target.chat_id
            ),
        ))
    }
}
