//! Delivery of notifications: email over SMTP (lettre), generic webhooks
//! with an Alertmanager-compatible JSON payload, and Slack incoming
//! webhooks (reqwest, rustls).
//!
//! Each alerter is tried, then retried with exponential backoff
//! (`settings.delivery`); every success, retry and final failure is
//! counted in [`crate::status::Counters`]. SMTP credentials come from the
//! environment (`ZK_MONITOR_SMTP_USERNAME`, `ZK_MONITOR_SMTP_PASSWORD`) or
//! from `settings.smtp.password_file`, never from the command line.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::alert::{AlertRecord, Kind};
use crate::config::{Alerters, DeliverySettings, Settings, SlackSpec, SmtpSettings, StartTls};
use crate::status::Shared;

/// Environment variable holding the SMTP user name.
pub const ENV_SMTP_USERNAME: &str = "ZK_MONITOR_SMTP_USERNAME";
/// Environment variable holding the SMTP password.
pub const ENV_SMTP_PASSWORD: &str = "ZK_MONITOR_SMTP_PASSWORD";

/// Sends notifications to the configured alerters.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    smtp_settings: SmtpSettings,
    delivery: DeliverySettings,
    shared: Arc<Shared>,
}

impl Notifier {
    /// Builds the HTTP client and SMTP transport for `settings`.
    pub fn new(settings: &Settings, shared: Arc<Shared>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.delivery.timeout.0)
            .user_agent(concat!("zk-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        let smtp = Some(smtp_transport(&settings.smtp)?);
        Ok(Notifier {
            http,
            smtp,
            smtp_settings: settings.smtp.clone(),
            delivery: settings.delivery.clone(),
            shared,
        })
    }

    /// Delivers `record`'s notification to every alerter in `alerters`;
    /// true when all of them accepted it.
    pub async fn deliver(&self, record: &AlertRecord, alerters: &Alerters, repeat: bool) -> bool {
        let mut all = true;
        if !alerters.email.is_empty() {
            all &= self
                .with_retries("email", &record.path, || {
                    self.send_email(record, alerters, repeat)
                })
                .await;
        }
        if let Some(slack) = &alerters.slack {
            all &= self
                .with_retries("slack", &record.path, || self.send_slack(record, slack))
                .await;
        }
        for hook in &alerters.webhooks {
            if record.notification == Kind::Resolved && !hook.send_resolved {
                continue;
            }
            let payload = alertmanager_payload(record, &self.shared, alerters.body.as_deref());
            all &= self
                .with_retries("webhook", &record.path, || {
                    let mut req = self.http.post(&hook.url).json(&payload);
                    for (k, v) in &hook.headers {
                        req = req.header(k, v);
                    }
                    async move {
                        let resp = req.send().await.map_err(|e| e.to_string())?;
                        if resp.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!("HTTP {}", resp.status()))
                        }
                    }
                })
                .await;
        }
        all
    }

    async fn with_retries<F, Fut>(&self, kind: &str, path: &str, mut attempt: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<(), String>>,
    {
        let counters = &self.shared.counters;
        let mut wait = self.delivery.backoff.0;
        for n in 0..=self.delivery.retries {
            let result = match tokio::time::timeout(self.attempt_timeout(kind), attempt()).await {
                Ok(r) => r,
                Err(_) => Err("timed out".into()),
            };
            match result {
                Ok(()) => {
                    counters.sent(kind);
                    info!(alerter = kind, path, "notification delivered");
                    return true;
                }
                Err(e) if n == self.delivery.retries => {
                    counters.failed(kind);
                    warn!(alerter = kind, path, error = %e, attempts = n + 1, "notification failed; giving up");
                    return false;
                }
                Err(e) => {
                    counters.retried(kind);
                    warn!(alerter = kind, path, error = %e, retry_in = ?wait, "notification failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.delivery.max_backoff.0);
                }
            }
        }
        false
    }

    fn attempt_timeout(&self, kind: &str) -> Duration {
        if kind == "email" {
            self.smtp_settings.timeout.0 + Duration::from_secs(1)
        } else {
            self.delivery.timeout.0 + Duration::from_secs(1)
        }
    }

    async fn send_email(
        &self,
        record: &AlertRecord,
        alerters: &Alerters,
        repeat: bool,
    ) -> std::result::Result<(), String> {
        let Some(smtp) = &self.smtp else {
            return Err("no SMTP transport".into());
        };
        let msg = email_message(
            record,
            alerters,
            &self.smtp_settings.from,
            &self.shared,
            repeat,
        )
        .map_err(|e| e.to_string())?;
        smtp.send(msg).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn send_slack(
        &self,
        record: &AlertRecord,
        slack: &SlackSpec,
    ) -> std::result::Result<(), String> {
        let payload = slack_payload(record, slack);
        let resp = self
            .http
            .post(&slack.webhook_url)
            .json(&payload)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", resp.status()))
        }
    }
}

/// Reads SMTP credentials: environment first, then `password_file`.
fn smtp_credentials(s: &SmtpSettings) -> Result<Option<Credentials>> {
    let user = std::env::var(ENV_SMTP_USERNAME)
        .ok()
        .or_else(|| s.username.clone());
    let pass = match std::env::var(ENV_SMTP_PASSWORD) {
        Ok(p) => Some(p),
        Err(_) => match &s.password_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read SMTP password file {}", f.display()))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            None => None,
        },
    };
    match (user, pass) {
        (Some(u), Some(p)) => Ok(Some(Credentials::new(u, p))),
        (None, None) => Ok(None),
        (Some(_), None) => bail!(
            "an SMTP user name is set but no password ({ENV_SMTP_PASSWORD} or settings.smtp.password_file)"
        ),
        (None, Some(_)) => bail!(
            "an SMTP password is set but no user name ({ENV_SMTP_USERNAME} or settings.smtp.username)"
        ),
    }
}

fn smtp_transport(s: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        .port(s.port)
        .timeout(Some(s.timeout.0));
    let tls = || -> Result<TlsParameters> {
        let mut p = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read SMTP CA file {}", ca.display()))?;
            p = p.add_root_certificate(
                Certificate::from_pem(&pem)
                    .with_context(|| format!("bad certificate in {}", ca.display()))?,
            );
        }
        p.build_rustls().context("cannot set up TLS for SMTP")
    };
    b = match s.starttls {
        StartTls::Off => b.tls(Tls::None),
        StartTls::Opportunistic => b.tls(Tls::Opportunistic(tls()?)),
        StartTls::Required => b.tls(Tls::Required(tls()?)),
    };
    if let Some(creds) = smtp_credentials(s)? {
        b = b.credentials(creds);
    }
    Ok(b.build())
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn state_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Firing => "Error",
        Kind::Resolved => "OK",
    }
}

/// The email for a notification. The subject does not depend on the state
/// (as in the older monitor) so that mail clients thread firing and
/// resolved messages together.
pub fn email_message(
    record: &AlertRecord,
    alerters: &Alerters,
    from: &str,
    shared: &Shared,
    repeat: bool,
) -> Result<Message> {
    let mut b = Message::builder()
        .from(from.parse::<Mailbox>().context("bad From address")?)
        .subject(format!("Warning! {} has an alert!", record.path));
    for to in &alerters.email {
        b = b.to(to
            .parse::<Mailbox>()
            .with_context(|| format!("bad address {to}"))?);
    }
    b = b
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-ZK-Monitor-Status"),
            record.notification.as_str().to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-ZK-Monitor-Agent"),
            shared.agent.clone(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-ZK-Monitor-Path"),
            record.path.clone(),
        ));
    let mut body = format!(
        "{}\n{} is in the {} state.\n",
        record.message,
        record.path,
        state_word(record.notification)
    );
    if let Some(extra) = &alerters.body {
        body.push('\n');
        body.push_str(extra);
        body.push('\n');
    }
    body.push_str(&format!(
        "\nStatus: {}{}\nOut of spec since: {}\n",
        record.notification.as_str(),
        if repeat { " (repeat)" } else { "" },
        rfc3339(record.started_at_ms)
    ));
    if let Some(end) = record.ended_at_ms {
        body.push_str(&format!("Back in spec at: {}\n", rfc3339(end)));
    }
    body.push_str(&format!(
        "Cluster: {}\nSent by agent: {}\n",
        shared.cluster_path, shared.agent
    ));
    b.body(body).context("cannot build the email")
}

fn fingerprint(s: &str) -> String {
    // FNV-1a 64: stable across runs and agents.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The Alertmanager webhook payload (version 4) for one notification.
pub fn alertmanager_payload(record: &AlertRecord, shared: &Shared, body: Option<&str>) -> Value {
    let status = record.notification.as_str();
    let labels = json!({
        "alertname": "ZnodeOutOfSpec",
        "path": record.path,
        "cluster": shared.cluster_path,
        "severity": "critical",
    });
    let mut annotations = json!({
        "summary": format!("{} is in the {} state", record.path, state_word(record.notification)),
        "description": record.message,
        "agent": shared.agent,
    });
    if let Some(b) = body {
        annotations["body"] = json!(b);
    }
    let ends_at = match record.ended_at_ms {
        Some(ms) if record.notification == Kind::Resolved => rfc3339(ms),
        _ => "0001-01-01T00:00:00Z".to_string(),
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"ZnodeOutOfSpec\", path=\"{}\"}}", record.path),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "zk-monitor",
        "groupLabels": {"alertname": "ZnodeOutOfSpec", "path": record.path},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(record.started_at_ms),
            "endsAt": ends_at,
            "generatorURL": "",
            "fingerprint": fingerprint(&format!("{}{}", shared.cluster_path, record.path)),
        }],
    })
}

fn slack_payload(record: &AlertRecord, slack: &SlackSpec) -> Value {
    let icon = match record.notification {
        Kind::Firing => ":exclamation:",
        Kind::Resolved => ":+1:",
    };
    let mut p = json!({
        "text": format!(
            "({icon}) {} is in {} - {}",
            record.path,
            state_word(record.notification),
            record.message
        ),
    });
    if let Some(c) = &slack.channel {
        p["channel"] = json!(c);
    }
    if let Some(u) = &slack.username {
        p["username"] = json!(u);
    }
    if let Some(i) = &slack.icon_emoji {
        p["icon_emoji"] = json!(i);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Delivery;

    fn record(kind: Kind) -> AlertRecord {
        AlertRecord {
            path: "/svc/api".into(),
            firing: kind == Kind::Firing,
            notification: kind,
            delivery: Delivery::Pending,
            message: "2 children is less than minimum 3".into(),
            started_at_ms: 0,
            sent_at_ms: 0,
            ended_at_ms: (kind == Kind::Resolved).then_some(60_000),
            count: 1,
            agent: "a".into(),
        }
    }

    #[test]
    fn alertmanager_payload_has_the_v4_shape() {
        let shared = Shared::new("agent-1".into(), "/zk_monitor/prod".into());
        let p = alertmanager_payload(&record(Kind::Firing), &shared, None);
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        let a = &p["alerts"][0];
        assert_eq!(a["labels"]["path"], "/svc/api");
        assert_eq!(a["labels"]["alertname"], "ZnodeOutOfSpec");
        assert_eq!(
            a["annotations"]["description"],
            "2 children is less than minimum 3"
        );
        assert_eq!(a["startsAt"], "1970-01-01T00:00:00Z");
        assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
        let p = alertmanager_payload(&record(Kind::Resolved), &shared, Some("call Bob"));
        assert_eq!(p["status"], "resolved");
        assert_eq!(p["alerts"][0]["endsAt"], "1970-01-01T00:01:00Z");
        assert_eq!(p["commonAnnotations"]["body"], "call Bob");
    }

    #[test]
    fn email_keeps_the_older_subject_and_body() {
        let shared = Shared::new("agent-1".into(), "/zk_monitor/prod".into());
        let alerters = Alerters {
            email: vec!["ops@example.org".into()],
            ..Alerters::default()
        };
        let m = email_message(
            &record(Kind::Firing),
            &alerters,
            "zk-monitor@localhost",
            &shared,
            false,
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Subject: Warning! /svc/api has an alert!"),
            "{text}"
        );
        assert!(
            text.contains("2 children is less than minimum 3\r\n/svc/api is in the Error state."),
            "{text}"
        );
        assert!(text.contains("X-ZK-Monitor-Agent: agent-1"), "{text}");
    }

    #[test]
    fn slack_text_matches_the_older_format() {
        let slack = SlackSpec {
            webhook_url: "http://127.0.0.1:1/".into(),
            channel: Some("#oncall".into()),
            ..SlackSpec::default()
        };
        let p = slack_payload(&record(Kind::Firing), &slack);
        assert_eq!(
            p["text"],
            "(:exclamation:) /svc/api is in Error - 2 children is less than minimum 3"
        );
        assert_eq!(p["channel"], "#oncall");
    }
}
