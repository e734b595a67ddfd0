//! The binary's start-up contract, no ZooKeeper needed: bad configs (wrong
//! types, unknown keys, broken YAML) exit with status 2 and a message
//! naming file, line and key, before any connection to ZooKeeper; unknown
//! alerters are warnings; the older monitor's flags are accepted.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::write_config;

fn run(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zk-monitor"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("zk-monitor {args:?} did not exit");
}

#[test]
fn bad_configs_exit_2_naming_file_line_and_key_before_touching_zookeeper() {
    // A fake ZooKeeper that must see no connection.
    let fake_zk = TcpListener::bind("127.0.0.1:0").unwrap();
    fake_zk.set_nonblocking(true).unwrap();
    let zk = fake_zk.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "wrong_type.yaml",
            "/services/foo:\n  children: 1\n/services/bar:\n  children: three\n",
            ":4:13: key /services/bar > children: invalid type: string \"three\"",
        ),
        (
            "unknown_key.yaml",
            "/services/foo:\n  children: 1\n  cancel_timout: 10\n",
            ":3:3: key /services/foo > cancel_timout: unknown field `cancel_timout`",
        ),
        (
            "broken.yaml",
            "/services/foo:\n  children: 1\n\t- oops\n",
            ":3:1: invalid YAML:",
        ),
        (
            "bad_bounds.yaml",
            "/a:\n  children: {min: 5, max: 2}\n",
            ":2:3: key /a > children: minimum 5 is greater than maximum 2",
        ),
        (
            "bad_regex.yaml",
            "/a:\n  data:\n    matches: '(['\n",
            ":3:5: key /a > data > matches: invalid regular expression",
        ),
        (
            "not_a_path.yaml",
            "services/foo:\n  children: 1\n",
            ":1:1: unknown top-level key `services/foo`",
        ),
    ];
    for (file, yaml, expected) in cases {
        let path = write_config(dir.path(), file, yaml);
        let out = run(&[
            "-z",
            &zk,
            "-p",
            "0",
            "--listen",
            "127.0.0.1",
            "-f",
            path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        let want = format!("{}{expected}", path.display());
        assert!(
            stderr.contains(&want),
            "{file}: expected `{want}` in:\n{stderr}"
        );
    }
    let missing = dir.path().join("missing.yaml");
    let out = run(&["-z", &zk, "-f", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
    assert!(
        fake_zk.accept().is_err(),
        "zk-monitor connected to ZooKeeper despite a bad config"
    );
}

#[test]
fn unknown_alerters_are_warnings_and_older_files_load_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // The older monitor's sample config, verbatim.
    let path = write_config(
        dir.path(),
        "sample.yaml",
        "# Example Service\n/services/path/to/service:\n  alerter:\n    email:\n     - eng+zkmonitor@nextdoor.com\n    hipchat:\n     room: Engineering\n     token: crazytoken\n  cancel_timeout: 10\n  children: 1\n",
    );
    let out = run(&["--check", "-f", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 paths, 1 warnings)"));
    let want = format!(
        "{}:6: key /services/path/to/service > alerter > hipchat: unknown alerter `hipchat` is ignored",
        path.display()
    );
    assert!(stderr.contains(&want), "expected `{want}` in:\n{stderr}");
}

#[test]
fn help_documents_the_older_monitor_flags() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "-z, --zookeeper",
        "--zookeeper_user",
        "--zookeeper_pass",
        "-c, --cluster_name",
        "--cluster_prefix",
        "-f, --file",
        "-p, --port",
        "-l, --level",
        "-s, --syslog",
    ] {
        assert!(help.contains(flag), "missing {flag} in:\n{help}");
    }
    let out = run(&["-l", "LOUD"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--zookeeper_user", "bob", "--check"]);
    assert_eq!(out.status.code(), Some(0), "--check ignores credentials");
}

#[test]
fn syslog_output_goes_to_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cfg = write_config(dir.path(), "m.yaml", "/a:\n  alerter: {hipchat: x}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_zk-monitor"))
        .args(["-s", "local3", "--check", "-f", cfg.to_str().unwrap()])
        .env("ZK_MONITOR_SYSLOG_SOCKET", &sock_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]);
    // local3 (19) * 8 + warning (4) = 156
    assert!(line.starts_with("<156>zk-monitor["), "{line}");
    assert!(line.contains("unknown alerter `hipchat`"), "{line}");
    let out = run(&["-s", "nosuchfacility", "--check"]);
    assert_eq!(out.status.code(), Some(2));
}
