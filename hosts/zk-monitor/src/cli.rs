//! Command-line flags, compatible with the older Python monitor's
//! (`-z/--zookeeper`, `--zookeeper_user`, `--zookeeper_pass`,
//! `-c/--cluster_name`, `--cluster_prefix`, `-f/--file`, `-p/--port`,
//! `-l/--level`, `-s/--syslog`), plus a few new ones. Dashed spellings
//! (`--cluster-name`) are accepted as aliases.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Environment variable for the ZooKeeper digest user.
pub const ENV_ZK_USER: &str = "ZK_MONITOR_ZOOKEEPER_USER";
/// Environment variable for the ZooKeeper digest password.
pub const ENV_ZK_PASS: &str = "ZK_MONITOR_ZOOKEEPER_PASS";

/// zk-monitor: watches znodes for compliance with a spec and alerts.
#[derive(Debug, Parser)]
#[command(
    name = "zk-monitor",
    version,
    about = "Watches ZooKeeper znodes for compliance with a spec and alerts when they go out of spec",
    long_about = "Watches ZooKeeper znodes for compliance with a spec (e.g. \"/services/api must \
have at least 3 children\") and alerts by email, webhook or Slack when one goes out of spec, \
then again when it is back.\n\nRun several agents with the same --cluster_name for redundancy: \
they elect one leader through ZooKeeper, and only the leader sends alerts.\n\nExit status: 0 \
on a clean shutdown, 2 for a bad configuration or bad flags (nothing is sent to ZooKeeper \
then), 1 for other start-up failures.",
    after_help = "Send SIGHUP to reload the --file; a bad file is rejected and the old \
configuration kept."
)]
pub struct Cli {
    /// ZooKeeper connect string: comma-separated host:port list, optional /chroot.
    #[arg(short = 'z', long = "zookeeper", default_value = "localhost:2181")]
    pub zookeeper: String,

    /// ZooKeeper digest user name [env: ZK_MONITOR_ZOOKEEPER_USER].
    #[arg(long = "zookeeper_user", alias = "zookeeper-user", env = ENV_ZK_USER, hide_env = true, hide_env_values = true)]
    pub zookeeper_user: Option<String>,

    /// ZooKeeper digest password [env: ZK_MONITOR_ZOOKEEPER_PASS]. Prefer the
    /// environment or --zookeeper_pass_file: arguments are visible to other users.
    #[arg(long = "zookeeper_pass", alias = "zookeeper-pass", env = ENV_ZK_PASS, hide_env = true, hide_env_values = true)]
    pub zookeeper_pass: Option<String>,

    /// File holding the ZooKeeper digest password (first line).
    #[arg(
        long = "zookeeper_pass_file",
        alias = "zookeeper-pass-file",
        value_name = "FILE"
    )]
    pub zookeeper_pass_file: Option<PathBuf>,

    /// Unique cluster name (e.g. prod-zookeeper-monitor); agents with the same
    /// name share one leader.
    #[arg(
        short = 'c',
        long = "cluster_name",
        alias = "cluster-name",
        default_value = "zkmonitor"
    )]
    pub cluster_name: String,

    /// Prefix path in ZooKeeper for all zk-monitor clusters.
    #[arg(
        long = "cluster_prefix",
        alias = "cluster-prefix",
        default_value = "/zk_monitor"
    )]
    pub cluster_prefix: String,

    /// YAML file listing the znodes to monitor.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// HTTP port for /, /status, /metrics and /healthz.
    #[arg(short = 'p', long = "port", default_value_t = 8080)]
    pub port: u16,

    /// Address the HTTP server binds to.
    #[arg(long = "listen", default_value = "0.0.0.0", value_name = "ADDR")]
    pub listen: IpAddr,

    /// Logging level: DEBUG, INFO, WARN or ERROR (any case).
    #[arg(short = 'l', long = "level", default_value = "warn", value_parser = parse_level)]
    pub level: tracing::Level,

    /// Log to syslog with this facility (e.g. local0) instead of stderr.
    #[arg(short = 's', long = "syslog", value_name = "FACILITY")]
    pub syslog: Option<String>,

    /// This agent's name under CLUSTER/agents/ (default: HOSTNAME-PID).
    #[arg(long = "name")]
    pub name: Option<String>,

    /// ZooKeeper session timeout; a dead leader is replaced within about this long.
    #[arg(long = "session_timeout", alias = "session-timeout", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: Duration,

    /// Use one-shot watches even if the server supports persistent watches.
    #[arg(long = "oneshot_watches", alias = "oneshot-watches")]
    pub oneshot_watches: bool,

    /// Check the --file and exit (0 when valid, 2 when not).
    #[arg(long = "check")]
    pub check: bool,
}

fn parse_level(s: &str) -> Result<tracing::Level, String> {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Ok(tracing::Level::DEBUG),
        "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" | "critical" => Ok(tracing::Level::ERROR),
        "trace" => Ok(tracing::Level::TRACE),
        _ => Err(format!("`{s}` is not a level (DEBUG, INFO, WARN, ERROR)")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

impl Cli {
    /// `<cluster_prefix>/<cluster_name>`, normalised.
    pub fn cluster_path(&self) -> String {
        let prefix = self.cluster_prefix.trim_end_matches('/');
        format!("{prefix}/{}", self.cluster_name.trim_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_monitor_flags_parse() {
        let cli = Cli::try_parse_from([
            "zk-monitor",
            "-z",
            "zk1:2181,zk2:2181",
            "--zookeeper_user=bob",
            "-c",
            "prod",
            "--cluster_prefix=/mon/",
            "-f",
            "paths.yaml",
            "-p",
            "9090",
            "-l",
            "INFO",
            "-s",
            "local0",
        ])
        .unwrap();
        assert_eq!(cli.zookeeper, "zk1:2181,zk2:2181");
        assert_eq!(cli.zookeeper_user.as_deref(), Some("bob"));
        assert_eq!(cli.cluster_path(), "/mon/prod");
        assert_eq!(cli.port, 9090);
        assert_eq!(cli.level, tracing::Level::INFO);
        assert_eq!(cli.syslog.as_deref(), Some("local0"));
    }

    #[test]
    fn defaults_match_the_older_monitor() {
        let cli = Cli::try_parse_from(["zk-monitor"]).unwrap();
        assert_eq!(cli.zookeeper, "localhost:2181");
        assert_eq!(cli.cluster_path(), "/zk_monitor/zkmonitor");
        assert_eq!(cli.port, 8080);
        assert_eq!(cli.level, tracing::Level::WARN);
    }

    #[test]
    fn bad_level_is_rejected() {
        assert!(Cli::try_parse_from(["zk-monitor", "-l", "LOUD"]).is_err());
    }
}
