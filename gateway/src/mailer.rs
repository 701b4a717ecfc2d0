//! Outgoing mail as a port: [`Mailer`], with an SMTP adapter (lettre) and a logging
//! stand-in for machines without a relay.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Environment, MailSettings};

/// One plain-text message.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (it may carry a secret link: never log it in production).
    pub body: String,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Delivers mail.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Hands `mail` to the delivery system; returns once it accepted it.
    ///
    /// # Errors
    /// When the message cannot be built or the relay refuses or is unreachable.
    async fn send(&self, mail: Mail) -> anyhow::Result<()>;
}

/// Plain SMTP (no TLS) through a relay: a local MTA on loopback or a trusted
/// network.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `smtp://[user:password@]host[:port]`.
    ///
    /// # Errors
    /// When the URL or the sender address is malformed.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("smtp://")
            .context("mail.smtp_url must start with smtp:// (this build speaks plain SMTP)")?;
        let rest = rest.trim_end_matches('/');
        let (credentials, address) = match rest.rsplit_once('@') {
            Some((userinfo, address)) => (Some(userinfo), address),
            None => (None, rest),
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>().context("parse mail.smtp_url port")?,
            ),
            None => (address, 25),
        };
        anyhow::ensure!(!host.is_empty(), "mail.smtp_url has no host");
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(10)));
        if let Some(userinfo) = credentials {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.to_owned(),
                    password.to_owned(),
                ));
        }
        let from = from.parse().context("parse mail.from")?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to.parse().context("parse recipient")?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body(&mail.body)?)
            .context("build message")?;
        self.transport
            .send(message)
            .await
            .context("smtp delivery")?;
        Ok(())
    }
}

/// The body: 7-bit as below when it is ASCII (tokens and links stay intact); other
/// text (a customer's name, a staff-edited template) is left to lettre, which picks
/// quoted-printable or base64 for UTF-8.
fn body(text: &str) -> anyhow::Result<Body> {
    if text.is_ascii() {
        seven_bit(text)
    } else {
        Ok(Body::new(text.replace("\r\n", "\n").replace('\n', "\r\n")))
    }
}

/// The body as 7-bit text with CRLF line ends, so links and codes stay on their
/// lines, unwrapped. lettre would pick quoted-printable for lines of 76 characters or
/// more (a link with a token is longer); RFC 5322 allows 7-bit lines up to 998, which
/// is checked here before the body is marked as already encoded.
fn seven_bit(body: &str) -> anyhow::Result<Body> {
    let lines: Vec<&str> = body.lines().collect();
    anyhow::ensure!(
        lines
            .iter()
            .all(|l| l.len() <= 998 && l.bytes().all(|b| b.is_ascii() && b != 0 && b != b'\r')),
        "mail body is not 7-bit text with lines of at most 998 characters"
    );
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    Ok(Body::dangerous_pre_encoded(
        text.into_bytes(),
        ContentTransferEncoding::SevenBit,
    ))
}

/// Logs instead of delivering; the body (with its link) only in development.
#[derive(Debug, Clone, Copy)]
pub struct LogMailer {
    show_body: bool,
}

#[async_trait::async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        if self.show_body {
            tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.body, "mail not delivered (no mail.smtp_url)");
        } else {
            tracing::warn!(to = %mail.to, subject = %mail.subject, "mail not delivered (no mail.smtp_url)");
        }
        Ok(())
    }
}

/// The mailer the settings ask for.
///
/// # Errors
/// When the SMTP settings are malformed.
pub fn from_settings(
    settings: &MailSettings,
    env: Environment,
) -> anyhow::Result<std::sync::Arc<dyn Mailer>> {
    Ok(match &settings.smtp_url {
        Some(url) => std::sync::Arc::new(SmtpMailer::new(url.expose(), &settings.from)?),
        None => std::sync::Arc::new(LogMailer {
            show_body: env == Environment::Development,
        }),
    })
}
