//! The `zk-monitor` binary: parse flags, load and check the config (before
//! any ZooKeeper traffic), then run the agent and the HTTP server until
//! SIGINT/SIGTERM. SIGHUP reloads the config file.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use zk_monitor::agent::{self, Loaded, Options};
use zk_monitor::cli::Cli;
use zk_monitor::config::{self, Config};
use zk_monitor::http;
use zk_monitor::notify::Notifier;
use zk_monitor::status::Shared;

/// Exit status for bad configuration or flags.
const EXIT_CONFIG: u8 = 2;
/// Exit status for other start-up failures.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = zk_monitor::logging::init(cli.level, cli.syslog.as_deref()) {
        eprintln!("zk-monitor: error: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-monitor: error: {e}");
            if cli.syslog.is_some() {
                error!("{e}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in &config.warnings {
        warn!("config warning: {w}");
    }
    if cli.check {
        // Also the SMTP set-up (password file, CA file), still offline.
        let probe = Arc::new(Shared::new(String::new(), cli.cluster_path()));
        if let Err(e) = Notifier::new(&config.settings, probe) {
            eprintln!("zk-monitor: error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
        println!(
            "{}: OK ({} paths, {} warnings)",
            config.source,
            config.paths.len(),
            config.warnings.len()
        );
        return ExitCode::SUCCESS;
    }
    let digest = match digest(&cli) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("zk-monitor: error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zk-monitor: error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(serve(cli, config, digest))
}

fn load(cli: &Cli) -> Result<Config, String> {
    match &cli.file {
        Some(path) => config::load(path).map_err(|e| e.to_string()),
        None => Ok(Config {
            source: "(no --file)".into(),
            ..Config::default()
        }),
    }
}

fn digest(cli: &Cli) -> Result<Option<(String, String)>, String> {
    let pass = match (&cli.zookeeper_pass, &cli.zookeeper_pass_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ),
        (None, None) => None,
    };
    match (&cli.zookeeper_user, pass) {
        (Some(u), Some(p)) => Ok(Some((u.clone(), p))),
        (None, None) => Ok(None),
        _ => Err("--zookeeper_user and --zookeeper_pass go together".into()),
    }
}

fn agent_name(cli: &Cli) -> String {
    if let Some(n) = &cli.name {
        return n.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}

async fn serve(cli: Cli, config: Config, digest: Option<(String, String)>) -> ExitCode {
    let name = agent_name(&cli);
    let shared = Arc::new(Shared::new(name.clone(), cli.cluster_path()));
    let notifier = match Notifier::new(&config.settings, shared.clone()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("zk-monitor: error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let addr = SocketAddr::new(cli.listen, cli.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("zk-monitor: error: cannot listen on {addr}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    info!(agent = %name, http = %bound, cluster = %cli.cluster_path(), paths = config.paths.len(), "zk-monitor starting");
    let (config_tx, config_rx) = watch::channel(Arc::new(Loaded { config, notifier }));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let http_task = tokio::spawn(http::serve(listener, shared.clone(), shutdown_rx.clone()));
    let opts = Options {
        zookeeper: cli.zookeeper.clone(),
        digest,
        cluster_path: cli.cluster_path(),
        agent: name,
        session_timeout: cli.session_timeout,
        oneshot_watches: cli.oneshot_watches,
    };
    let agent_task = tokio::spawn(agent::run(opts, config_rx, shared.clone(), shutdown_rx));

    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("zk-monitor: error: cannot install signal handlers");
        return ExitCode::from(EXIT_FAILURE);
    };
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&cli, &config_tx, &shared),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), agent_task).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), http_task).await;
    ExitCode::SUCCESS
}

fn reload(cli: &Cli, tx: &watch::Sender<Arc<Loaded>>, shared: &Arc<Shared>) {
    use std::sync::atomic::Ordering;
    let result = load(cli).and_then(|config| {
        let notifier =
            Notifier::new(&config.settings, shared.clone()).map_err(|e| format!("{e:#}"))?;
        Ok(Loaded { config, notifier })
    });
    match result {
        Ok(loaded) => {
            for w in &loaded.config.warnings {
                warn!("config warning: {w}");
            }
            info!(
                paths = loaded.config.paths.len(),
                "SIGHUP: configuration reloaded"
            );
            shared.counters.reloads_ok.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(Arc::new(loaded));
        }
        Err(e) => {
            shared
                .counters
                .reloads_failed
                .fetch_add(1, Ordering::Relaxed);
            error!("SIGHUP: configuration reload failed, keeping the old configuration: {e}");
        }
    }
}
