//! Handing a mail over: to the merchant's SMTP server (lettre; STARTTLS or TLS required unless the
//! host is loopback), or to one `.eml` file a message (`sika demo`).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use crate::config::{MailConfig, MailDelivery, SmtpTarget, SmtpTls};

/// A whole conversation with the mail server is cut off after this: a server that
/// accepts and then hangs holds up only the mail job, never anything else.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub enum Transport {
    /// No mail configured: mails stay in the outbox, unsent.
    Off,
    Dir(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>, String),
    /// Configured, but it cannot be built (told at start; each send fails with it).
    Broken(String),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Off => "Transport::Off",
            Transport::Dir(_) => "Transport::Dir",
            Transport::Smtp(..) => "Transport::Smtp",
            Transport::Broken(_) => "Transport::Broken",
        })
    }
}

impl Transport {
    pub fn from_config(c: &MailConfig) -> Result<Transport, String> {
        Ok(match &c.delivery {
            MailDelivery::Off => Transport::Off,
            MailDelivery::Dir(d) => Transport::Dir(d.clone()),
            MailDelivery::Smtp(t) => Transport::Smtp(smtp(t)?, describe(t)),
        })
    }

    /// The transport, or one that reports why it could not be built.
    pub fn or_broken(c: &MailConfig) -> Transport {
        Transport::from_config(c).unwrap_or_else(Transport::Broken)
    }

    pub fn is_off(&self) -> bool {
        matches!(self, Transport::Off)
    }

    /// Where mail goes, for `sika check` and the console (never the credentials).
    pub fn destination(&self) -> String {
        match self {
            Transport::Off => "not configured".into(),
            Transport::Dir(d) => format!("written to {}", d.display()),
            Transport::Smtp(_, d) => d.clone(),
            Transport::Broken(why) => format!("cannot be sent: {why}"),
        }
    }

    /// Sends `letter` to `to`. The error is for the outbox and the log: it never holds the password.
    pub async fn send(&self, from: &str, to: &str, id: &str, subject: &str, body: &str) -> Result<(), String> {
        let message = build(from, to, id, subject, body)?;
        match self {
            Transport::Off => Err("mail is not configured (SIKA_SMTP_URL)".into()),
            Transport::Broken(why) => Err(why.clone()),
            Transport::Dir(dir) => write_eml(dir, id, &message.formatted()).await,
            Transport::Smtp(smtp, _) => match tokio::time::timeout(SEND_TIMEOUT, smtp.send(message)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("the mail server refused or failed: {e}")),
                Err(_) => Err(format!("the mail server did not answer within {} s", SEND_TIMEOUT.as_secs())),
            },
        }
    }
}

fn build(from: &str, to: &str, id: &str, subject: &str, body: &str) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|_| "SIKA_MAIL_FROM is not an address".to_string())?;
    let to: Mailbox = to.parse().map_err(|_| "the reader's e-mail address is not an address".to_string())?;
    let domain = from.email.domain().to_string();
    Message::builder()
        .from(from)
        .to(to)
        .message_id(Some(format!("<{id}@{domain}>")))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| format!("the mail could not be built: {e}"))
}

fn describe(t: &SmtpTarget) -> String {
    let how = match t.tls {
        SmtpTls::StartTls => "STARTTLS required",
        SmtpTls::Implicit => "TLS",
        SmtpTls::None => "no TLS, loopback only",
    };
    format!("SMTP {}:{} ({how})", t.host, t.port)
}

fn smtp(t: &SmtpTarget) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let url = url::Url::parse(t.url.expose()).map_err(|_| "SIKA_SMTP_URL is not a URL".to_string())?;
    let mut params = TlsParameters::builder(t.host.clone());
    if let Some(ca) = &t.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read SIKA_SMTP_CA_FILE: {e}"))?;
        let cert = Certificate::from_pem(&pem).map_err(|_| "SIKA_SMTP_CA_FILE holds no PEM certificate".to_string())?;
        params = params.add_root_certificate(cert);
    }
    let params = params.build_rustls().map_err(|e| format!("cannot set up TLS for the mail server: {e}"))?;
    let tls = match t.tls {
        SmtpTls::StartTls => Tls::Required(params),
        SmtpTls::Implicit => Tls::Wrapper(params),
        SmtpTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(t.host.clone())
        .port(t.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if !url.username().is_empty() {
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let user = decode(url.username());
        let password = decode(url.password().unwrap_or_default());
        b = b.credentials(Credentials::new(user, password));
    }
    Ok(b.build())
}

/// One file a message, readable by Sika's user only.
async fn write_eml(dir: &std::path::Path, id: &str, bytes: &[u8]) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let name = format!("{id}.eml");
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        crate::fsutil::ensure_private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        match crate::fsutil::write_private(&dir.join(&name), &bytes) {
            // Written before a crash kept it from being marked sent: it is there once.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map_err(|e| format!("cannot write {name}: {e}")),
        }
    })
    .await
    .map_err(|e| format!("writing the mail stopped: {e}"))?
}
