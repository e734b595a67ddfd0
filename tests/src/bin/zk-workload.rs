//! zk-workload: drives known workloads against a real ZooKeeper 3.8 server
//! in a network namespace of its own and captures them.
//!
//! ```text
//! zk-workload demo [--out demo/demo.pcap] [--expected demo/expected.json] [--readme demo/README.md]
//! ```
//!
//! `demo` starts a namespace (loopback MTU 1500) and a server on
//! 127.0.0.1:2181 inside it, captures port 2181 with tcpdump, runs the demo
//! workload (three clients, CRUD, watches, multi, digest auth, errors,
//! pings, a reconnect with SetWatches, four-letter words, a 50 KB znode),
//! and writes the capture, the exact expected decode (JSON, the harness's
//! `Counts`) and a README describing both. Needs root, tcpdump, iproute2
//! and Debian's zookeeper.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use zk_traffic_tests::client::Endpoint;
use zk_traffic_tests::jute::PERMS_ALL;
use zk_traffic_tests::pcap::PcapFile;
use zk_traffic_tests::{Capture, CreateMode, MultiOp, Netns, RawZk, Recorder, ZkServer};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MAX_DEMO_BYTES: u64 = 300 * 1024;
const BLOB_LEN: usize = 50_000;

fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn expect_event(zk: &mut RawZk, ty: &str, path: &str) -> Res<()> {
    let ev = zk.wait_event(Duration::from_secs(10))?;
    if ev.type_name() != ty || ev.path != path {
        return Err(format!("expected {ty} {path}, got {} {}", ev.type_name(), ev.path).into());
    }
    Ok(())
}

/// The demo workload. Every step checks the server's answer, so the
/// recorded counts are what happened.
fn demo_workload(ep: &Endpoint, rec: &Recorder) -> Res<()> {
    // a monitoring probe
    let t = ep.four_letter("ruok", Some(rec))?;
    if t != "imok" {
        return Err(format!("ruok: {t:?}").into());
    }
    pause(30);

    // "app": builds its tree
    let mut app = RawZk::connect(ep, rec)?;
    app.create("/app", b"", CreateMode::Persistent)?.ok();
    app.create(
        "/app/config",
        br#"{"feature":true}"#,
        CreateMode::Persistent,
    )?
    .ok();
    app.create("/app/members", b"", CreateMode::Persistent)?
        .ok();
    app.create("/app/queue", b"", CreateMode::Persistent)?.ok();
    app.create("/app/members/host-a", b"10.0.0.1", CreateMode::Ephemeral)?
        .ok();
    for i in 0..3 {
        let r = app
            .create(
                "/app/queue/job-",
                format!("job {i}").as_bytes(),
                CreateMode::PersistentSequential,
            )?
            .ok();
        if r.created_path() != format!("/app/queue/job-{i:010}") {
            return Err(format!("sequential name {}", r.created_path()).into());
        }
        pause(10);
    }
    app.create("/app/locks", b"", CreateMode::Container)?.ok();
    app.create2("/app/locks/lock-", b"", CreateMode::EphemeralSequential)?
        .ok();
    app.get_data("/app/config", false)?.ok();
    app.exists("/app/feature-flags", false)?
        .expect_err("NoNode");
    app.create("/app/config", b"", CreateMode::Persistent)?
        .expect_err("NodeExists");
    app.ping()?.ok();
    pause(40);

    // "watcher": watches config, membership and a readiness flag
    let mut w = RawZk::connect(ep, rec)?;
    w.get_data("/app/config", true)?.ok();
    w.get_children("/app/members", true)?.ok();
    w.exists("/app/ready", true)?.expect_err("NoNode");
    pause(40);

    // "admin": authenticates and changes things
    let mut admin = RawZk::connect(ep, rec)?;
    admin.set_auth_digest("admin:s3cret")?.ok();
    let f = admin.create_acl_frame("/app/secret", b"token", PERMS_ALL, "auth", "");
    admin.call(f)?.ok();
    admin
        .set_data("/app/config", br#"{"feature":false}"#, -1)?
        .ok();
    expect_event(&mut w, "NodeDataChanged", "/app/config")?;
    pause(20);
    admin
        .create("/app/members/host-b", b"10.0.0.2", CreateMode::Ephemeral)?
        .ok();
    expect_event(&mut w, "NodeChildrenChanged", "/app/members")?;
    pause(20);
    admin
        .create("/app/ready", b"", CreateMode::Persistent)?
        .ok();
    expect_event(&mut w, "NodeCreated", "/app/ready")?;
    pause(20);
    let blob: Vec<u8> = (0..BLOB_LEN).map(|i| b'a' + (i % 26) as u8).collect();
    admin
        .create("/app/blob", &blob, CreateMode::Persistent)?
        .ok();
    admin
        .multi(&[
            MultiOp::create("/app/queue/batch", b"3 jobs"),
            MultiOp::set_data("/app/config", br#"{"feature":false,"v":3}"#),
            MultiOp::delete("/app/queue/job-0000000000"),
        ])?
        .ok();
    pause(40);

    // "app" reads
    let kids = app.get_children2("/app/queue", false)?.ok().children();
    if kids.len() != 3 {
        return Err(format!("queue children {kids:?}").into());
    }
    app.get_data("/app/secret", false)?.expect_err("NoAuth");
    app.sync("/app")?.ok();
    if app.get_data("/app/blob", false)?.ok().data() != blob {
        return Err("blob read back differs".into());
    }
    app.delete("/app/queue/job-0000000001", -1)?.ok();
    app.delete("/app/queue", -1)?.expect_err("NotEmpty");
    pause(40);

    // "watcher" loses its connection and resumes its session
    w.ping()?.ok();
    let mut w = w.reconnect()?;
    let rel = w.last_zxid;
    w.set_watches(rel, &["/app/config"], &[], &[])?.ok();
    pause(20);
    admin.set_data("/app/config", b"v4", -1)?.ok();
    expect_event(&mut w, "NodeDataChanged", "/app/config")?;
    w.ping()?.ok();
    pause(30);

    let t = ep.four_letter("mntr", Some(rec))?;
    if !t.contains("zk_version") {
        return Err(format!("mntr: {t:?}").into());
    }

    for (name, zk) in [("app", app), ("admin", admin), ("watcher", w)] {
        let left = zk.close()?;
        if !left.is_empty() {
            return Err(format!("{name}: unexpected events {left:?}").into());
        }
    }
    Ok(())
}

const README_HEAD: &str = r#"# demo capture

`demo.pcap` is a real capture (classic pcap, Ethernet link type) of a
ZooKeeper 3.8.0 server (Debian's `zookeeper` package) on 127.0.0.1:2181,
taken by tcpdump on the loopback of a network namespace whose MTU is 1500
(GSO limited to one segment), so large replies span many segments.
`expected.json` is exactly what a correct decoder reports for it (the
harness's `Counts`: messages keyed by type and path, watch events, error
replies, multi sub-ops, and byte sums of frame sizes incl. the 4-byte
length prefix); `tests/tests/demo_capture.rs` checks zk-dump against it.

Regenerate (as root) with `scripts/capture-demo.sh`; the counts below do
not change from run to run, the timestamps, ports and sessions do.

## The workload

1. A monitoring probe sends the four-letter word `ruok` (answer `imok`).
2. Client **app** connects and builds `/app`, `/app/config`,
   `/app/members`, `/app/queue`, an ephemeral `/app/members/host-a`, three
   sequential `/app/queue/job-` nodes, `/app/locks` (create with the
   container flag) and an ephemeral-sequential `/app/locks/lock-`
   (Create2); reads `/app/config`; probes `/app/feature-flags` (NoNode);
   tries to create `/app/config` again (NodeExists); pings.
3. Client **watcher** connects and sets watches: getData `/app/config`,
   getChildren `/app/members`, exists `/app/ready` (NoNode).
4. Client **admin** connects, authenticates (SetAuth, scheme `digest`,
   `admin:s3cret`), creates `/app/secret` with the `auth` ACL, and then:
   setData `/app/config` (watcher gets NodeDataChanged), creates the
   ephemeral `/app/members/host-b` (NodeChildrenChanged on
   `/app/members`), creates `/app/ready` (NodeCreated), creates the
   50,000-byte `/app/blob`, and sends a multi (create `/app/queue/batch`,
   setData `/app/config`, delete `/app/queue/job-0000000000`).
5. **app** lists `/app/queue` (GetChildren2), reads `/app/secret` (NoAuth:
   not authenticated), syncs `/app`, reads `/app/blob` back (a 50 KB
   reply over ~35 segments), deletes a job, tries to delete `/app/queue`
   (NotEmpty).
6. **watcher** pings, drops its TCP connection without closing the
   session, reconnects with the same session id (a ConnectRequest with a
   session: a reconnect) and re-arms its data watch with SetWatches
   (xid -8); **admin** sets `/app/config` again (NodeDataChanged), the
   watcher pings.
7. The probe sends `mntr`.
8. app, admin and watcher close their sessions (CloseRequest).

## What is on the wire
"#;

struct Args {
    out: PathBuf,
    expected: Option<PathBuf>,
    readme: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    match it.next().as_deref() {
        Some("demo") => {}
        _ => {
            return Err(
                "usage: zk-workload demo [--out FILE] [--expected FILE] [--readme FILE]".into(),
            );
        }
    }
    let mut a = Args {
        out: PathBuf::from("demo/demo.pcap"),
        expected: None,
        readme: None,
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--out" => a.out = v.into(),
            "--expected" => a.expected = Some(v.into()),
            "--readme" => a.readme = Some(v.into()),
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

fn run(a: Args) -> Res<()> {
    let ns = Netns::new()?;
    let server = ZkServer::start_in(&ns)?;
    let tmp = a.out.with_extension("pcap.tmp");
    let cap = Capture::start(Some(&ns), server.port(), &tmp)?;
    let rec = Recorder::new();
    let work = demo_workload(&server.endpoint(), &rec);
    let stats = cap.stop();
    work?;
    let stats = stats?;
    let size = std::fs::metadata(&tmp)?.len();
    if size > MAX_DEMO_BYTES {
        return Err(format!("capture is {size} bytes, above {MAX_DEMO_BYTES}").into());
    }
    let file = PcapFile::read(&tmp)?;
    if file
        .records
        .iter()
        .any(|r| (r.orig_len as usize) > r.data.len())
    {
        return Err("capture has truncated packets".into());
    }
    std::fs::rename(&tmp, &a.out)?;
    let exp = rec.expected();
    if let Some(p) = &a.expected {
        std::fs::write(p, serde_json::to_string_pretty(&exp.to_json())? + "\n")?;
    }
    let ts = |r: &zk_traffic_tests::pcap::Record| r.ts_sec as f64 + r.ts_frac as f64 / 1e6;
    let first = file.records.first().map(ts).unwrap_or(0.0);
    let last = file.records.last().map(ts).unwrap_or(0.0);
    let mut md = String::from(README_HEAD);
    md.push_str(&format!(
        "\n{} packets, {} bytes, {:.1} s; {} requests, {} replies, {} watch events, {} four-letter words.\n\n",
        stats.captured,
        size,
        last - first,
        exp.messages
            .iter()
            .filter(|((t, _), _)| t.ends_with("Request"))
            .map(|(_, v)| v)
            .sum::<u64>(),
        exp.messages
            .iter()
            .filter(|((t, _), _)| t.ends_with("Reply") && t != "FourLetterReply" || t == "ConnectResponse")
            .map(|(_, v)| v)
            .sum::<u64>(),
        exp.events.values().sum::<u64>(),
        exp.total("FourLetterWord"),
    ));
    md.push_str(&exp.to_markdown());
    if let Some(p) = &a.readme {
        std::fs::write(p, md)?;
    } else {
        print!("{md}");
    }
    eprintln!(
        "wrote {} ({} packets, {size} bytes)",
        a.out.display(),
        stats.captured
    );
    drop(server);
    Ok(())
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zk-workload: {e}");
            ExitCode::FAILURE
        }
    }
}
