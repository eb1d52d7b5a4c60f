//! E-mail over SMTP with lettre: STARTTLS required (`smtp://`), implicit TLS (`smtps://`),
//! or plain text only when asked for by name (`starttls=off`), with authentication when the
//! URL carries a user and password. One plain-text message per notification, to every
//! recipient of the line.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::DeliveryError;
use crate::channels::{EmailTarget, SmtpSecurity};
use crate::message::Notification;

pub(crate) struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    shown: String,
}

impl EmailSender {
    pub(crate) fn new(target: &EmailTarget) -> Result<Self, String> {
        let shown = target.shown();
        let builder = match target.security {
            SmtpSecurity::ImplicitTls => AsyncSmtpTransport::<Tokio1Executor>::relay(&target.host),
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&target.host)
            }
            SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &target.host,
            )),
        }
        .map_err(|e| format!("{shown}: {e}"))?;
        let mut builder = builder
            .port(target.port)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(pass)) = (&target.username, &target.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("{shown}: {a:?} is not an e-mail address: {e}"))
        };
        Ok(EmailSender {
            transport: builder.build(),
            from: parse(&target.from)?,
            to: target
                .to
                .iter()
                .map(|a| parse(a))
                .collect::<Result<_, _>>()?,
            shown,
        })
    }

    /// The message for `n`.
    pub(crate) fn message(&self, n: &Notification) -> Result<Message, DeliveryError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(n.title())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(n.plain_text())
            .map_err(|e| DeliveryError::permanent(format!("cannot build the e-mail: {e}")))
    }

    pub(crate) async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let message = self.message(n)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = format!("SMTP {}: {e}", self.shown);
                if e.is_permanent() {
                    Err(DeliveryError::permanent(text))
                } else {
                    Err(DeliveryError::transient(text))
                }
            }
        }
    }
}
