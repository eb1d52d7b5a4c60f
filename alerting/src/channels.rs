//! Where notifications go: one line per channel, in the URL style Apprise and shoutrrr users
//! already know, parsed into typed targets.
//!
//! Every target holds a secret (a bot token, a webhook URL whose path is the credential, an
//! SMTP password), so `Debug` is written by hand and [`ChannelTarget::shown`] gives the form
//! that may appear in logs and errors: the secret replaced, the rest kept so an operator can
//! still tell which channel is meant.

use std::fmt;

use url::Url;

/// The kind of a channel; the value of the `channel` label of every alerting metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Telegram,
    Slack,
    Email,
    Webhook,
}

impl ChannelKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "telegram",
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One configured destination. A Telegram line with several chats gives one target per chat,
/// so a chat that fails is retried alone and the others are not sent the message twice.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelTarget {
    Telegram(TelegramTarget),
    Slack(WebhookUrl),
    Email(EmailTarget),
    Webhook(WebhookUrl),
}

impl ChannelTarget {
    pub(crate) fn kind(&self) -> ChannelKind {
        match self {
            ChannelTarget::Telegram(_) => ChannelKind::Telegram,
            ChannelTarget::Slack(_) => ChannelKind::Slack,
            ChannelTarget::Email(_) => ChannelKind::Email,
            ChannelTarget::Webhook(_) => ChannelKind::Webhook,
        }
    }

    /// The target with its secret replaced: fit for logs and error messages.
    pub fn shown(&self) -> String {
        match self {
            ChannelTarget::Telegram(t) => format!("telegram://***@telegram?chats={}", t.chat_id),
            ChannelTarget::Slack(u) | ChannelTarget::Webhook(u) => u.shown(),
            ChannelTarget::Email(e) => e.shown(),
        }
    }
}

impl fmt::Debug for ChannelTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.kind(), self.shown())
    }
}

/// A Telegram bot and one chat it writes to.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramTarget {
    /// `123456789:AA...`: the bot's credential.
    pub(crate) token: String,
    /// A numeric chat id (`-100...` for groups and channels) or `@channelname`.
    pub(crate) chat_id: String,
    /// Bot API base, `https://api.telegram.org` unless a proxy or a test says otherwise.
    pub(crate) api_url: Url,
}

impl fmt::Debug for TelegramTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramTarget")
            .field("token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .field("api_url", &self.api_url.as_str())
            .finish()
    }
}

/// An HTTP(S) URL that is itself a credential (Slack incoming webhooks, most generic
/// webhooks): only its scheme and host may be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(pub(crate) Url);

impl WebhookUrl {
    pub(crate) fn shown(&self) -> String {
        let host = self.0.host_str().unwrap_or("?");
        match self.0.port() {
            Some(port) => format!("{}://{host}:{port}/***", self.0.scheme()),
            None => format!("{}://{host}/***", self.0.scheme()),
        }
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (port 465).
    ImplicitTls,
    /// `smtp://`: STARTTLS, required: a server that does not offer it is an error, never a
    /// silent fall back to plain text with the password in it.
    StartTls,
    /// `smtp://...?starttls=off`: plain text, for a relay on the same host or a test server.
    Plain,
}

/// An SMTP server, the credentials for it, and who gets the mail.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: SmtpSecurity,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
}

impl EmailTarget {
    pub(crate) fn shown(&self) -> String {
        let scheme = match self.security {
            SmtpSecurity::ImplicitTls => "smtps",
            SmtpSecurity::StartTls | SmtpSecurity::Plain => "smtp",
        };
        let user = match &self.username {
            Some(u) => format!("{u}:***@"),
            None => String::new(),
        };
        format!(
            "{scheme}://{user}{}:{}/?from={}&to={}",
            self.host,
            self.port,
            self.from,
            self.to.join(",")
        )
    }
}

impl fmt::Debug for EmailTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// Telegram's public Bot API.
pub(crate) const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

/// `telegram://<bot-token>@telegram?chats=<chat-id>[,<chat-id>...]`, one target per chat.
///
/// A bot token (`123456789:AA...`) holds a colon, so a URL parser reads it as user and
/// password: both halves are joined again.
pub fn parse_telegram(line: &str, api_url: &Url) -> Result<Vec<ChannelTarget>, String> {
    let url = Url::parse(line.trim()).map_err(|e| {
        format!("not a URL like telegram://<bot-token>@telegram?chats=<chat-id>: {e}")
    })?;
    if url.scheme() != "telegram" {
        return Err("must start with telegram://".into());
    }
    let user = decode(url.username());
    let token = match url.password() {
        Some(p) => format!("{user}:{}", decode(p)),
        None => user,
    };
    if token.is_empty() || token.contains('/') || token.chars().any(char::is_whitespace) {
        return Err(
            "the bot token is missing or malformed: telegram://<bot-token>@telegram?chats=<chat-id>"
                .into(),
        );
    }
    let mut chats = Vec::new();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "chats" | "chat_id" | "chat" => chats.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            ),
            "parsemode" | "preview" | "notification" | "title" => {}
            other => return Err(format!("unknown option {other:?}; use chats=<chat-id>")),
        }
    }
    if chats.is_empty() {
        return Err("no chat: add ?chats=<chat-id>[,<chat-id>]".into());
    }
    for chat in &chats {
        let numeric = chat
            .strip_prefix('-')
            .unwrap_or(chat)
            .chars()
            .all(|c| c.is_ascii_digit());
        let username = chat.len() > 1
            && chat.starts_with('@')
            && chat[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !(numeric || username) {
            return Err(format!(
                "chat {chat:?} is neither a numeric chat id nor @channelname"
            ));
        }
    }
    Ok(chats
        .into_iter()
        .map(|chat_id| {
            ChannelTarget::Telegram(TelegramTarget {
                token: token.clone(),
                chat_id,
                api_url: api_url.clone(),
            })
        })
        .collect())
}

/// The Bot API base URL (`ALERT_TELEGRAM_API_URL`).
pub fn parse_telegram_api(line: &str) -> Result<Url, String> {
    let url = Url::parse(line.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with https:// (or http:// for a local proxy)".into());
    }
    Ok(url)
}

/// A Slack incoming webhook URL (`https://hooks.slack.com/services/...`) or a generic JSON
/// webhook. Plain `http://` is accepted for receivers on a private network.
pub fn parse_webhook(line: &str) -> Result<WebhookUrl, String> {
    let url = Url::parse(line.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with https:// (or http://)".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("a host is required".into());
    }
    Ok(WebhookUrl(url))
}

/// `smtp://user:pass@host:587/?from=...&to=a@x,b@y` (STARTTLS required; `starttls=off` for a
/// plain local relay) or `smtps://user:pass@host:465/?from=...&to=...` (implicit TLS).
pub fn parse_email(line: &str) -> Result<EmailTarget, String> {
    let url = Url::parse(line.trim()).map_err(|e| {
        format!("not a URL like smtp://user:pass@host:587/?from=alerts@example.com&to=ops@example.com: {e}")
    })?;
    let mut security = match url.scheme() {
        "smtp" => SmtpSecurity::StartTls,
        "smtps" => SmtpSecurity::ImplicitTls,
        _ => return Err("must start with smtp:// (STARTTLS) or smtps:// (TLS)".into()),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the SMTP server's host is missing")?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::ImplicitTls => 465,
        _ => 587,
    });
    let username = Some(decode(url.username())).filter(|u| !u.is_empty());
    let password = url.password().map(decode);
    if username.is_some() != password.is_some() {
        return Err("give both a user and a password (smtp://user:pass@host), or neither".into());
    }
    let mut from = None;
    let mut to = Vec::new();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "from" => from = Some(value.trim().to_string()),
            "to" => to.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            "starttls" => match value.as_ref() {
                "off" | "false" | "no" if security == SmtpSecurity::StartTls => {
                    security = SmtpSecurity::Plain
                }
                "on" | "true" | "yes" | "required" => {}
                "off" | "false" | "no" => {
                    return Err(
                        "starttls=off makes no sense with smtps:// (TLS from the start)".into(),
                    )
                }
                other => return Err(format!("starttls={other:?}: use on or off")),
            },
            other => {
                return Err(format!(
                    "unknown option {other:?}; the options are from, to and starttls"
                ))
            }
        }
    }
    let from = from.ok_or("the sender is missing: add ?from=alerts@example.com")?;
    check_address("from", &from)?;
    if to.is_empty() {
        return Err("no recipient: add &to=ops@example.com[,other@example.com]".into());
    }
    for address in &to {
        check_address("to", address)?;
    }
    Ok(EmailTarget {
        host,
        port,
        security,
        username,
        password,
        from,
        to,
    })
}

fn check_address(which: &str, address: &str) -> Result<(), String> {
    address
        .parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("{which}={address:?} is not an e-mail address: {e}"))
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Url {
        Url::parse(DEFAULT_TELEGRAM_API).unwrap()
    }

    #[test]
    fn a_telegram_line_gives_one_target_per_chat_with_the_whole_token() {
        let targets = parse_telegram(
            "telegram://123456:AAbb-Cc_dd@telegram?chats=-1001234,@ops_room",
            &api(),
        )
        .unwrap();
        assert_eq!(targets.len(), 2);
        let ChannelTarget::Telegram(t) = &targets[0] else {
            panic!("not telegram")
        };
        assert_eq!(t.token, "123456:AAbb-Cc_dd");
        assert_eq!(t.chat_id, "-1001234");
        let ChannelTarget::Telegram(t) = &targets[1] else {
            panic!("not telegram")
        };
        assert_eq!(t.chat_id, "@ops_room");
    }

    #[test]
    fn telegram_lines_without_chat_or_token_are_refused() {
        assert!(parse_telegram("telegram://123:abc@telegram", &api())
            .unwrap_err()
            .contains("chats"));
        assert!(parse_telegram("telegram://telegram?chats=1", &api())
            .unwrap_err()
            .contains("token"));
        assert!(parse_telegram("https://123:abc@telegram?chats=1", &api()).is_err());
        assert!(parse_telegram("telegram://123:abc@telegram?chats=bob", &api()).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_or_shown_forms() {
        let mut targets =
            parse_telegram("telegram://123456:SECRETtoken@telegram?chats=42", &api()).unwrap();
        targets.push(ChannelTarget::Slack(
            parse_webhook("https://hooks.slack.com/services/T000/B000/SECRETpath").unwrap(),
        ));
        targets.push(ChannelTarget::Email(
            parse_email(
                "smtp://bot:SECRETpass@mail.example.com:587/?from=a@example.com&to=b@example.com",
            )
            .unwrap(),
        ));
        targets.push(ChannelTarget::Webhook(
            parse_webhook("https://hooks.example.com/alerts?key=SECRETkey").unwrap(),
        ));
        for t in &targets {
            for text in [format!("{t:?}"), t.shown()] {
                assert!(!text.contains("SECRET"), "{text}");
            }
        }
        assert_eq!(targets[1].shown(), "https://hooks.slack.com/***");
        assert!(targets[2].shown().contains("bot:***@mail.example.com:587"));
    }

    #[test]
    fn smtp_means_starttls_required_and_smtps_means_implicit_tls() {
        let e = parse_email(
            "smtp://u:p%40ss@mail.example.com/?from=a@example.com&to=b@example.com,c@example.com",
        )
        .unwrap();
        assert_eq!(e.security, SmtpSecurity::StartTls);
        assert_eq!(e.port, 587);
        assert_eq!(e.password.as_deref(), Some("p@ss"), "percent-decoded");
        assert_eq!(e.to, vec!["b@example.com", "c@example.com"]);
        let e =
            parse_email("smtps://mail.example.com/?from=a@example.com&to=b@example.com").unwrap();
        assert_eq!((e.security, e.port), (SmtpSecurity::ImplicitTls, 465));
        assert_eq!(e.username, None);
        let e =
            parse_email("smtp://127.0.0.1:2525/?from=a@example.com&to=b@example.com&starttls=off")
                .unwrap();
        assert_eq!((e.security, e.port), (SmtpSecurity::Plain, 2525));
    }

    #[test]
    fn email_lines_missing_parts_are_refused_with_the_reason() {
        let cases = [
            ("smtp://mail.example.com/?to=b@example.com", "sender"),
            ("smtp://mail.example.com/?from=a@example.com", "recipient"),
            (
                "smtp://mail.example.com/?from=nobody&to=b@example.com",
                "from=",
            ),
            (
                "smtp://u@mail.example.com/?from=a@example.com&to=b@example.com",
                "password",
            ),
            (
                "http://mail.example.com/?from=a@example.com&to=b@example.com",
                "smtp://",
            ),
            (
                "smtps://mail.example.com/?from=a@example.com&to=b@example.com&starttls=off",
                "smtps",
            ),
            (
                "smtp://mail.example.com/?from=a@example.com&to=b@example.com&cc=x",
                "unknown option",
            ),
        ];
        for (line, why) in cases {
            let err = parse_email(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn webhooks_must_be_http_urls() {
        assert!(parse_webhook("ftp://example.com/x").is_err());
        assert!(parse_webhook("hooks.slack.com/services/x").is_err());
        assert!(parse_webhook("http://127.0.0.1:9000/hook").is_ok());
    }
}
