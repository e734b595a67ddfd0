//! The zk-stats dashboard in a real browser: `zk-stats --offline` on a
//! capture of a real ZooKeeper 3.8 workload serves `/`; headless Chromium
//! (Debian's `chromium`, driven by playwright-core: `tests/browser/`)
//! loads it. The page must show the capture's top paths with their
//! counts, draw its charts, fetch nothing from anywhere else, and log no
//! console error.
//!
//! Needs root (namespaces), Debian's zookeeper and chromium, node, and
//! `npm install` in tests/browser (scripts/test.sh does all of it).
//! `ZKT_SCREENSHOT=FILE.png` keeps a screenshot of the page.

mod zk_stats_support;

use std::process::Command;

use zk_stats_support::{
    Daemon, Tally, get_json, json_out, requests_per_path, workload, zk_stats_bin,
};
use zk_traffic_tests::{Scenario, workspace_root};

#[test]
fn the_dashboard_shows_the_captures_top_paths_in_chromium() {
    let browser = workspace_root().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "run `npm install` in {} first (scripts/test.sh does)",
        browser.display()
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "Debian's chromium is missing (apt-get install -y chromium; scripts/test.sh does)"
    );

    let mut s = Scenario::start("dashboard_source");
    let mut t = Tally::default();
    workload(&s, &mut t);
    s.stop_capture();
    let port = s.port().to_string();
    let (full, _) = json_out(&s.pcap, &["--port", &port, "--max-results", "0"]);
    let per_path = requests_per_path(&full);

    let mut cmd = Command::new(zk_stats_bin());
    cmd.arg("--offline")
        .arg(&s.pcap)
        .args(["--port", &port, "--http-port", "0"]);
    let d = Daemon::start(cmd, None);
    d.wait_finished();
    let top = get_json(d.addr, "/json/top?window=cumulative&n=15");

    let shot = std::env::var_os("ZKT_SCREENSHOT");
    let mut node = Command::new("node");
    node.arg(browser.join("dashboard.mjs"))
        .arg(format!("http://{}/", d.addr));
    if let Some(p) = &shot {
        node.arg(p);
    }
    let o = node.output().expect("node (Debian's nodejs)");
    assert!(
        o.status.success(),
        "dashboard.mjs: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    let page: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("JSON from dashboard.mjs");

    assert_eq!(
        page["errors"],
        serde_json::json!([]),
        "console errors: {page}"
    );
    assert_eq!(
        page["foreign"],
        serde_json::json!([]),
        "the page fetched from elsewhere: {page}"
    );
    assert_eq!(page["problem"], "", "{page}");
    assert_eq!(page["state"], "finished", "{page}");

    // The top paths table: every row is a path of the capture with its
    // request count, in the order of /json/top.
    let rows = page["paths"].as_array().unwrap();
    assert!(rows.len() >= 10, "{page}");
    let want = top["paths"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for (row, w) in rows.iter().zip(want) {
        let path = match row[0].as_str().unwrap() {
            "(no path)" => "",
            p => p,
        };
        let n: u64 = row[1].as_str().unwrap().parse().unwrap();
        assert_eq!(path, w["key"].as_str().unwrap());
        assert_eq!(n, per_path[path], "requests of {path:?}: {page}");
    }
    assert!(rows.iter().any(|r| r[0] == "/app/kids/k0"), "{page}");

    // The clients and identities tables, the cards, the charts.
    let clients = page["clients"].as_array().unwrap();
    assert_eq!(clients[0][0], "127.0.0.1", "{page}");
    let all: u64 = per_path.values().sum();
    assert_eq!(clients[0][1].as_str().unwrap().parse::<u64>().unwrap(), all);
    assert!(
        page["auths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == "digest:alice"),
        "{page}"
    );
    assert_eq!(
        page["cards"]["reads"].as_str().unwrap(),
        full["total/reads"].to_string()
    );
    assert_eq!(
        page["cards"]["writes"].as_str().unwrap(),
        full["total/writes"].to_string()
    );
    assert!(
        page["latencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == "GetDataRequest"),
        "{page}"
    );
    assert!(
        page["errors_table"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == "GetDataReply"),
        "{page}"
    );
    for c in page["drawn"].as_array().unwrap() {
        assert!(
            c["painted"].as_u64().unwrap() > 100,
            "chart {} is blank: {page}",
            c["id"]
        );
    }
}
