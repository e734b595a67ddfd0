//! One agent against a real ZooKeeper 3.8, a real SMTP server (aiosmtpd)
//! and a real HTTP receiver: the grace period, resolved notices, missing
//! paths, repeats, retries, the one-shot watch fallback, SIGHUP reload and
//! the REST endpoints over real sockets.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

async fn children(c: &zookeeper_client::Client, dir: &str, n: usize) {
    mkdirs(c, dir).await;
    for i in 0..n {
        create(c, &format!("{dir}/c{i}"), b"").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_below_minimum_alert_once_after_the_grace_period_then_resolve() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let smtp = Smtp::start();
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    children(&c, "/t1/svc", 2).await;
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "{}/t1/svc:\n  alerter:\n    email: ops@example.org\n    webhook: {{url: '{}'}}\n  children: 2\n  cancel_timeout: 2\n",
            smtp.settings_yaml(),
            hook.url
        ),
    );
    let agent = Agent::start(&zk, "t1", "a1", &cfg, &[]);
    wait_single_leader(&[&agent], T).await;
    agent.wait_state("/t1/svc", "OK", T).await;

    delete(&c, "/t1/svc/c1").await;
    agent.wait_state("/t1/svc", "Error", T).await;
    let s = agent.status().await.unwrap();
    assert_eq!(
        s["monitor"]["compliance"]["/t1/svc"]["message"],
        "1 children is less than minimum 2"
    );
    // Inside the grace period: nothing yet.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(smtp.mails().is_empty(), "alerted inside the grace period");
    assert!(hook.bodies().is_empty());
    // After it: exactly one alert per alerter.
    wait_for("the firing email", T, || async {
        (smtp.mails().len() == 1).then_some(())
    })
    .await;
    wait_for("the firing webhook", T, || async {
        (hook.bodies().len() == 1).then_some(())
    })
    .await;
    let mail = &smtp.mails()[0];
    assert_eq!(mail.status(), "firing");
    assert_eq!(mail.agent(), "a1");
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Warning! /t1/svc has an alert!"
    );
    assert!(
        mail.raw.contains("1 children is less than minimum 2"),
        "{}",
        mail.raw
    );
    let body = &hook.bodies()[0];
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"][0]["labels"]["path"], "/t1/svc");
    // Still out of spec, and another change while out of spec: no repeat.
    delete(&c, "/t1/svc/c0").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(hook.bodies().len(), 1);

    // Back in spec: one resolved notice each.
    create(&c, "/t1/svc/c0", b"").await;
    create(&c, "/t1/svc/c1", b"").await;
    wait_for("the resolved email", T, || async {
        (smtp.mails().len() == 2).then_some(())
    })
    .await;
    wait_for("the resolved webhook", T, || async {
        (hook.bodies().len() == 2).then_some(())
    })
    .await;
    assert_eq!(smtp.mails()[1].status(), "resolved");
    assert!(smtp.mails()[1].raw.contains("/t1/svc is in the OK state."));
    assert_eq!(hook.statuses(), ["firing", "resolved"]);
    assert_ne!(
        hook.bodies()[1]["alerts"][0]["endsAt"],
        "0001-01-01T00:00:00Z"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.mails().len(), 2);
    wait_for("the counters", T, || async {
        let m = agent.get("/metrics").await?.1;
        (m.contains("zk_monitor_alerts_sent_total{alerter=\"email\"} 2")
            && m.contains("zk_monitor_alerts_sent_total{alerter=\"webhook\"} 2"))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_within_the_grace_period_alerts_nothing() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    children(&c, "/t2/svc", 1).await;
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "/t2/svc:\n  alerter: {{webhook: '{}'}}\n  children: 1\n  cancel_timeout: 3\n",
            hook.url
        ),
    );
    let agent = Agent::start(&zk, "t2", "a1", &cfg, &[]);
    wait_single_leader(&[&agent], T).await;
    agent.wait_state("/t2/svc", "OK", T).await;
    delete(&c, "/t2/svc/c0").await;
    agent.wait_state("/t2/svc", "Error", T).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    create(&c, "/t2/svc/c0", b"").await;
    agent.wait_state("/t2/svc", "OK", T).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(hook.bodies().is_empty(), "got {:?}", hook.bodies());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_paths_alert_and_resolve_when_created_later() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "/t3/later:\n  alerter: {{webhook: '{}'}}\n  children: 1\n  cancel_timeout: 1\n\
             /t3/flag:\n  exists: true\n  data: {{matches: '^up$'}}\n",
            hook.url
        ),
    );
    let agent = Agent::start(&zk, "t3", "a1", &cfg, &[]);
    wait_single_leader(&[&agent], T).await;
    agent.wait_state("/t3/later", "Error", T).await;
    let s = agent.status().await.unwrap();
    assert_eq!(
        s["monitor"]["compliance"]["/t3/later"]["message"],
        "0 children is less than minimum 1 (path does not exist)"
    );
    wait_for("the firing webhook", T, || async {
        (hook.bodies().len() == 1).then_some(())
    })
    .await;
    // Created later, with a child: resolved.
    children(&c, "/t3/later", 1).await;
    agent.wait_state("/t3/later", "OK", T).await;
    wait_for("the resolved webhook", T, || async {
        (hook.bodies().len() == 2).then_some(())
    })
    .await;
    assert_eq!(hook.statuses(), ["firing", "resolved"]);
    // exists + data: missing, wrong data, right data.
    agent.wait_state("/t3/flag", "Error", T).await;
    create(&c, "/t3/flag", b"down").await;
    wait_for("data mismatch", T, || async {
        let s = agent.status().await?;
        let m = s["monitor"]["compliance"]["/t3/flag"]["message"]
            .as_str()?
            .to_string();
        m.contains("does not match").then_some(())
    })
    .await;
    c.set_data("/t3/flag", b"up", None).await.unwrap();
    agent.wait_state("/t3/flag", "OK", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_endpoints_answer_over_real_sockets() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let dir = tempfile::tempdir().unwrap();
    children(&c, "/t4/svc", 2).await;
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        "/t4/svc:\n  children: {min: 1, max: 3}\n/t4/bare:\n",
    );
    let agent = Agent::start(&zk, "t4", "a1", &cfg, &[]);
    agent.wait_state("/t4/svc", "OK", T).await;
    let (code, root) = agent.get("/").await.unwrap();
    assert_eq!(code, 200);
    assert!(root.contains(env!("CARGO_PKG_VERSION")), "{root}");
    let s = agent.status().await.unwrap();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["zookeeper"]["connected"], true);
    assert_eq!(s["dispatcher"]["name"], "a1");
    assert!(s["dispatcher"]["alerting"].is_boolean());
    assert!(s["dispatcher"]["alerters"].is_array());
    assert_eq!(s["monitor"]["compliance"]["/t4/svc"]["state"], "OK");
    assert_eq!(
        s["monitor"]["compliance"]["/t4/svc"]["message"],
        "All checks pass."
    );
    assert_eq!(s["monitor"]["compliance"]["/t4/bare"]["state"], "Unknown");
    let (code, m) = agent.get("/metrics").await.unwrap();
    assert_eq!(code, 200);
    for line in [
        "zk_monitor_zookeeper_connected 1",
        "zk_monitor_path_children{path=\"/t4/svc\"} 2",
        "zk_monitor_path_children_min{path=\"/t4/svc\"} 1",
        "zk_monitor_path_children_max{path=\"/t4/svc\"} 3",
        "zk_monitor_path_compliance{path=\"/t4/svc\"} 1",
        "zk_monitor_path_exists{path=\"/t4/svc\"} 1",
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    assert!(m.contains("zk_monitor_leader "), "{m}");
    assert!(
        m.contains("zk_monitor_alerts_failed_total{alerter=\"email\"} 0"),
        "{m}"
    );
    let (code, h) = agent.get("/healthz").await.unwrap();
    assert_eq!(code, 200);
    assert!(h.contains("\"ok\""), "{h}");
    let (code, _) = agent.get("/nope").await.unwrap();
    assert_eq!(code, 404);
    // Children above the maximum show in /status and /metrics.
    for i in 2..4 {
        create(&c, &format!("/t4/svc/c{i}"), b"").await;
    }
    agent.wait_state("/t4/svc", "Error", T).await;
    let m = agent.get("/metrics").await.unwrap().1;
    assert!(
        m.contains("zk_monitor_path_compliance{path=\"/t4/svc\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("zk_monitor_path_children{path=\"/t4/svc\"} 4"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_retried_with_backoff_and_failures_counted() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let flaky = Receiver::start(2).await;
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let dir = tempfile::tempdir().unwrap();
    mkdirs(&c, "/t5/svc").await;
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "settings:\n  delivery: {{retries: 2, backoff: 100ms, timeout: 2s}}\n\
             /t5/svc:\n  alerter:\n    webhook:\n      - url: '{}'\n        headers: {{Authorization: Bearer s3cret}}\n      - '{dead}'\n  children: 1\n",
            flaky.url
        ),
    );
    let agent = Agent::start(&zk, "t5", "a1", &cfg, &[]);
    wait_for("one delivery after two failures", T, || async {
        (flaky.bodies().len() == 1).then_some(())
    })
    .await;
    assert_eq!(flaky.auth_headers(), [Some("Bearer s3cret".to_string())]);
    wait_for("the failure to be counted", T, || async {
        let m = agent.get("/metrics").await?.1;
        m.contains("zk_monitor_alerts_failed_total{alerter=\"webhook\"} 1")
            .then_some(())
    })
    .await;
    let m = agent.get("/metrics").await.unwrap().1;
    // Two retries for the flaky one, two for the dead one.
    assert!(
        m.contains("zk_monitor_alert_retries_total{alerter=\"webhook\"} 4"),
        "{m}"
    );
    assert!(
        m.contains("zk_monitor_alerts_sent_total{alerter=\"webhook\"} 1"),
        "{m}"
    );
    // The record is updated once both webhooks are done.
    wait_for("the record to say failed", T, || async {
        let s = agent.status().await?;
        (s["dispatcher"]["alerts"]["/t5/svc"]["delivery"] == "failed").then_some(())
    })
    .await;
    let s = agent.status().await.unwrap();
    assert_eq!(s["dispatcher"]["alerts_failed"]["webhook"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_after_re_alerts_while_out_of_spec() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    mkdirs(&c, "/t6/svc").await;
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "/t6/svc:\n  alerter: {{webhook: '{}'}}\n  children: 1\n  repeat_after: 2s\n",
            hook.url
        ),
    );
    let _agent = Agent::start(&zk, "t6", "a1", &cfg, &[]);
    wait_for("three firing notifications", T, || async {
        (hook.bodies().len() >= 3).then_some(())
    })
    .await;
    assert!(hook.statuses().iter().all(|s| s == "firing"));
    // All repeats carry the same start time (one incident).
    let starts: Vec<_> = hook
        .bodies()
        .iter()
        .map(|b| b["alerts"][0]["startsAt"].clone())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{starts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneshot_watch_fallback_sees_every_change() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "/t7/svc:\n  alerter: {{webhook: '{}'}}\n  children: 2\n",
            hook.url
        ),
    );
    let agent = Agent::start(&zk, "t7", "a1", &cfg, &["--oneshot_watches"]);
    wait_single_leader(&[&agent], T).await;
    let s = agent.status().await.unwrap();
    assert_eq!(s["zookeeper"]["watch_mode"], "oneshot");
    let notified = |n: usize| {
        let hook = &hook;
        async move {
            wait_for(&format!("{n} notifications"), T, || async {
                (hook.bodies().len() == n).then_some(())
            })
            .await
        }
    };
    // Missing: firing.
    notified(1).await;
    children(&c, "/t7/svc", 1).await;
    wait_for("1 child seen", T, || async {
        let s = agent.status().await?;
        let m = s["monitor"]["compliance"]["/t7/svc"]["message"]
            .as_str()?
            .to_string();
        (m == "1 children is less than minimum 2").then_some(())
    })
    .await;
    create(&c, "/t7/svc/c1", b"").await;
    notified(2).await;
    delete(&c, "/t7/svc/c1").await;
    notified(3).await;
    create(&c, "/t7/svc/c1", b"").await;
    notified(4).await;
    assert_eq!(
        hook.statuses(),
        ["firing", "resolved", "firing", "resolved"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_bad_reload_keeps_the_old_config() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let dir = tempfile::tempdir().unwrap();
    children(&c, "/t8/a", 1).await;
    let cfg = write_config(dir.path(), "m.yaml", "/t8/a:\n  children: 1\n");
    let agent = Agent::start(&zk, "t8", "a1", &cfg, &[]);
    agent.wait_state("/t8/a", "OK", T).await;
    // A good reload adds a path.
    write_config(
        dir.path(),
        "m.yaml",
        "/t8/a:\n  children: 1\n/t8/b:\n  children: 1\n",
    );
    agent.signal(libc::SIGHUP);
    agent.wait_state("/t8/b", "Error", T).await;
    // A bad one is refused; both paths stay watched.
    write_config(dir.path(), "m.yaml", "/t8/a:\n  children: many\n");
    agent.signal(libc::SIGHUP);
    wait_for("the rejected reload to be counted", T, || async {
        let m = agent.get("/metrics").await?.1;
        m.contains("zk_monitor_config_reloads_total{result=\"error\"} 1")
            .then_some(())
    })
    .await;
    assert!(agent.log().contains("keeping the old configuration"));
    assert!(agent.log().contains("m.yaml:2"), "{}", agent.log());
    children(&c, "/t8/b", 1).await;
    agent.wait_state("/t8/b", "OK", T).await;
    // The path watched before and after the reload still gets events.
    assert_eq!(agent.state_of("/t8/a").await.as_deref(), Some("OK"));
    delete(&c, "/t8/a/c0").await;
    agent.wait_state("/t8/a", "Error", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_credentials_from_the_environment_protect_the_cluster_znodes() {
    let zk = shared_zk();
    let c = zk_client(&zk).await;
    let dir = tempfile::tempdir().unwrap();
    children(&c, "/t9/svc", 1).await;
    let cfg = write_config(dir.path(), "m.yaml", "/t9/svc:\n  children: 1\n");
    let agent = Agent::start_with_env(
        &zk,
        "t9",
        "a1",
        &cfg,
        &["--cluster_prefix", "/secure"],
        &[
            ("ZK_MONITOR_ZOOKEEPER_USER", "monitor"),
            ("ZK_MONITOR_ZOOKEEPER_PASS", "pw"),
        ],
    );
    wait_single_leader(&[&agent], T).await;
    agent.wait_state("/t9/svc", "OK", T).await;
    let authed = zookeeper_client::Client::connector()
        .with_auth("digest", b"monitor:pw")
        .connect(&zk.connect_string())
        .await
        .unwrap();
    let (acl, _) = authed.get_acl("/secure/t9/agents/a1").await.unwrap();
    assert_eq!(acl.len(), 1, "{acl:?}");
    assert_eq!(acl[0].scheme(), "digest");
    assert!(acl[0].id().starts_with("monitor:"), "{acl:?}");
    // Without the credentials the cluster's znodes are out of reach.
    assert_eq!(
        c.get_data("/secure/t9/agents/a1").await.unwrap_err(),
        zookeeper_client::Error::NoAuth
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", agent.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("pw\0"));
}
