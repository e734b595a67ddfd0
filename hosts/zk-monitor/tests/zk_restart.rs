//! ZooKeeper restarted under two agents: the outage is visible (status and
//! metrics) without flapping any path; the agents reconnect, re-read
//! everything, and alert only on real changes.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

async fn connected(a: &Agent) -> Option<bool> {
    a.status().await?["zookeeper"]["connected"].as_bool()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_restart_reconnects_rereads_and_alerts_only_on_real_changes() {
    let zk = ZkServer::start();
    let hook = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    {
        let c = zk_client(&zk).await;
        mkdirs(&c, "/svc/db").await;
        create(&c, "/svc/db/n0", b"").await;
        create(&c, "/svc/db/n1", b"").await;
        mkdirs(&c, "/svc/down").await;
    }
    let cfg = write_config(
        dir.path(),
        "m.yaml",
        &format!(
            "/svc/db:\n  alerter: {{webhook: '{0}'}}\n  children: 2\n\
             /svc/down:\n  alerter: {{webhook: '{0}'}}\n  children: 1\n",
            hook.url
        ),
    );
    let a = Agent::start(&zk, "r", "a", &cfg, &[]);
    let b = Agent::start(&zk, "r", "b", &cfg, &[]);
    wait_single_leader(&[&a, &b], T).await;
    a.wait_state("/svc/db", "OK", T).await;
    wait_for("the firing alert for /svc/down", T, || async {
        (hook.bodies().len() == 1).then_some(())
    })
    .await;

    for outage in [Duration::from_millis(500), Duration::from_secs(4)] {
        zk.stop();
        // The outage is visible, and every path is Unknown rather than flapping.
        for agent in [&a, &b] {
            wait_for("disconnected", T, || async {
                (connected(agent).await == Some(false)).then_some(())
            })
            .await;
            agent.wait_state("/svc/db", "Unknown", T).await;
            let m = agent.get("/metrics").await.unwrap().1;
            assert!(m.contains("zk_monitor_zookeeper_connected 0"), "{m}");
            assert!(m.contains("zk_monitor_leader 0"), "{m}");
            let s = agent.status().await.unwrap();
            let msg = s["monitor"]["compliance"]["/svc/db"]["message"]
                .as_str()
                .unwrap();
            assert!(msg.contains("last known: OK"), "{msg}");
        }
        tokio::time::sleep(outage).await;
        zk.restart();
        for agent in [&a, &b] {
            wait_for("reconnected", T, || async {
                (connected(agent).await == Some(true)).then_some(())
            })
            .await;
            agent.wait_state("/svc/db", "OK", T).await;
            agent.wait_state("/svc/down", "Error", T).await;
        }
        wait_single_leader(&[&a, &b], T).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            hook.statuses(),
            ["firing"],
            "no re-alert and no flap after an outage of {outage:?}"
        );
    }

    // A real change after the restarts is alerted once.
    let c = zk_client(&zk).await;
    create(&c, "/svc/down/n0", b"").await;
    wait_for("the resolved alert", T, || async {
        (hook.bodies().len() >= 2).then_some(())
    })
    .await;
    delete(&c, "/svc/db/n1").await;
    wait_for("the firing alert for /svc/db", T, || async {
        (hook.bodies().len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.statuses(), ["firing", "resolved", "firing"]);
    let paths: Vec<_> = hook
        .bodies()
        .iter()
        .map(|b| {
            b["alerts"][0]["labels"]["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(paths, ["/svc/down", "/svc/down", "/svc/db"]);
}
