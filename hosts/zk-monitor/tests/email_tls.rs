//! Email through an SMTP server that requires STARTTLS and AUTH: the
//! agent trusts a private CA (`ca_file`), takes the user name from the
//! environment and the password from a file (never from argv); a wrong
//! password is retried, counted as a failure and recorded as such.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_with_credentials_from_env_and_file() {
    let zk = ZkServer::start();
    let ca = TestCa::generate();
    let smtp = Smtp::start_tls_auth(&ca, "alerts", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let pass_file = dir.path().join("smtp-pass");
    std::fs::write(&pass_file, "s3cret\n").unwrap();
    let settings = format!(
        "settings:\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    starttls: required\n    ca_file: {}\n    from: 'ZK Monitor <zk-monitor@example.org>'\n    password_file: {}\n  delivery: {{retries: 1, backoff: 100ms}}\n",
        smtp.port,
        ca.ca.display(),
        pass_file.display()
    );
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "{settings}/mail/svc:\n  alerter: {{email: 'a@example.org, b@example.org'}}\n  children: 1\n"
        ),
    );
    let good = Agent::start_with_env(
        &zk,
        "mail-ok",
        "m1",
        &cfg,
        &[],
        &[("ZK_MONITOR_SMTP_USERNAME", "alerts")],
    );
    wait_for("the email", T, || async {
        (!smtp.mails().is_empty()).then_some(())
    })
    .await;
    let mail = &smtp.mails()[0];
    assert_eq!(mail.header("X-Test-TLS").as_deref(), Some("yes"));
    assert_eq!(mail.header("X-Test-Auth-User").as_deref(), Some("alerts"));
    assert_eq!(mail.status(), "firing");
    assert!(
        mail.header("To").unwrap().contains("b@example.org"),
        "{}",
        mail.raw
    );
    wait_for("the sent counter", T, || async {
        let m = good.get("/metrics").await?.1;
        m.contains("zk_monitor_alerts_sent_total{alerter=\"email\"} 1")
            .then_some(())
    })
    .await;
    // No secret on the command line.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", good.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("s3cret"));

    // A wrong password (the environment wins over the file): retried once,
    // then counted as failed and recorded as failed.
    let bad = Agent::start_with_env(
        &zk,
        "mail-bad",
        "m2",
        &cfg,
        &[],
        &[
            ("ZK_MONITOR_SMTP_USERNAME", "alerts"),
            ("ZK_MONITOR_SMTP_PASSWORD", "wrong"),
        ],
    );
    wait_for("the failure to be counted", T, || async {
        let m = bad.get("/metrics").await?.1;
        m.contains("zk_monitor_alerts_failed_total{alerter=\"email\"} 1")
            .then_some(())
    })
    .await;
    let m = bad.get("/metrics").await.unwrap().1;
    assert!(
        m.contains("zk_monitor_alert_retries_total{alerter=\"email\"} 1"),
        "{m}"
    );
    let s = bad.status().await.unwrap();
    assert_eq!(s["dispatcher"]["alerts"]["/mail/svc"]["delivery"], "failed");
    assert_eq!(smtp.mails().len(), 1);
}
