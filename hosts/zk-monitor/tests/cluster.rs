//! Three agents in one cluster against a real ZooKeeper 3.8 and a real
//! SMTP server: exactly one sends each alert; SIGKILL the leader and the
//! next transitions are alerted exactly once by the new leader, with no
//! duplicate and no lost alert across the failover.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_one_sender_and_a_leader_failover_loses_and_duplicates_nothing() {
    let zk = ZkServer::start();
    let c = zk_client(&zk).await;
    let smtp = Smtp::start();
    let dir = tempfile::tempdir().unwrap();
    mkdirs(&c, "/svc/api").await;
    for i in 0..3 {
        create(&c, &format!("/svc/api/n{i}"), b"").await;
    }
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "{}/svc/api:\n  alerter:\n    email: [oncall@example.org]\n  children: 3\n  cancel_timeout: 1\n",
            smtp.settings_yaml()
        ),
    );
    let mut agents: Vec<Agent> = ["a", "b", "c"]
        .iter()
        .map(|n| Agent::start(&zk, "prod", n, &cfg, &[]))
        .collect();
    let refs: Vec<&Agent> = agents.iter().collect();
    let first = wait_single_leader(&refs, T).await;
    for a in &agents {
        a.wait_state("/svc/api", "OK", T).await;
    }
    // Every agent is registered.
    let registered = c.list_children("/zk_monitor/prod/agents").await.unwrap();
    assert_eq!(registered.len(), 3, "{registered:?}");

    // Transition 1: out of spec. One email, from the leader.
    delete(&c, "/svc/api/n2").await;
    wait_for("the firing email", T, || async {
        (!smtp.mails().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "one alert for one transition");
    assert_eq!(mails[0].status(), "firing");
    assert_eq!(mails[0].agent(), agents[first].name);

    // SIGKILL the leader, then transition 2 (back in spec) at once, while
    // there is no leader (its session lives on for up to 2 s).
    agents[first].kill();
    create(&c, "/svc/api/n2", b"").await;
    let rest: Vec<&Agent> = agents
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, a)| a)
        .collect();
    let second = wait_single_leader(&rest, T).await;
    let new_leader = rest[second].name.clone();
    wait_for("the resolved email", T, || async {
        (smtp.mails().len() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "no duplicate across the failover");
    assert_eq!(mails[1].status(), "resolved");
    assert_eq!(mails[1].agent(), new_leader);

    // Transition 3: out of spec again, alerted once by the new leader.
    delete(&c, "/svc/api/n0").await;
    wait_for("the second firing email", T, || async {
        (smtp.mails().len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[2].status(), "firing");
    assert_eq!(mails[2].agent(), new_leader);
    // The dead agent's registration is gone with its session.
    let registered = c.list_children("/zk_monitor/prod/agents").await.unwrap();
    assert_eq!(registered.len(), 2, "{registered:?}");
    // The record in ZooKeeper says what was sent.
    let (data, _) = c
        .get_data("/zk_monitor/prod/alerts/%2Fsvc%2Fapi")
        .await
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(record["firing"], true);
    assert_eq!(record["delivery"], "delivered");
    assert_eq!(record["count"], 3);
    assert_eq!(record["agent"], new_leader.as_str());

    // A clean shutdown exits 0 and hands leadership over at once.
    let idx = agents.iter().position(|a| a.name == new_leader).unwrap();
    let status = agents[idx].terminate().unwrap();
    assert!(status.success(), "{status:?}");
    // Its session was closed, not left to expire: the registration is gone.
    let registered = c.list_children("/zk_monitor/prod/agents").await.unwrap();
    assert_eq!(registered.len(), 1, "{registered:?}");
    let last: Vec<&Agent> = agents
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first && *i != idx)
        .map(|(_, a)| a)
        .collect();
    wait_single_leader(&last, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        smtp.mails().len(),
        3,
        "the firing alert is not re-sent by the third leader"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_fenced_off_and_never_alerts_after_losing_its_session() {
    let zk = ZkServer::start();
    let c = zk_client(&zk).await;
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    mkdirs(&c, "/svc/web").await;
    create(&c, "/svc/web/n0", b"").await;
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "/svc/web:\n  alerter: {{webhook: '{}'}}\n  children: 1\n  cancel_timeout: 3\n",
            hook.url
        ),
    );
    let agents = [
        Agent::start(&zk, "frozen", "x", &cfg, &[]),
        Agent::start(&zk, "frozen", "y", &cfg, &[]),
    ];
    let first = wait_single_leader(&[&agents[0], &agents[1]], T).await;
    let other = 1 - first;
    for a in &agents {
        a.wait_state("/svc/web", "OK", T).await;
    }
    // Out of spec; freeze the leader inside the grace period, past its
    // session timeout (2 s).
    delete(&c, "/svc/web/n0").await;
    agents[first].wait_state("/svc/web", "Error", T).await;
    agents[first].signal(libc::SIGSTOP);
    wait_for("the other agent to lead", T, || async {
        agents[other].alerting().await.then_some(())
    })
    .await;
    wait_for("the alert from the new leader", T, || async {
        (!hook.bodies().is_empty()).then_some(())
    })
    .await;
    // Thaw the old leader: its grace period has long expired, but its
    // lock is gone, so its fenced record write fails and it sends nothing.
    agents[first].signal(libc::SIGCONT);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        bodies[0]["commonAnnotations"]["agent"],
        agents[other].name.as_str()
    );
    // It rejoins as a follower.
    wait_for("the thawed agent to reconnect", T, || async {
        let s = agents[first].status().await?;
        (s["zookeeper"]["connected"] == true && s["dispatcher"]["alerting"] == false).then_some(())
    })
    .await;
}
