//! `zk-pcap-amplify`: make a large capture out of small real ones.
//!
//! Replays every TCP connection of the inputs as many times as the wanted
//! size needs, each replica with its own client addresses (so every replica
//! is a new set of flows), payloads and sequence numbers kept byte for byte,
//! timestamps never going backwards. See `zk_traffic_benches::amplify`.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use zk_traffic_benches::amplify::{Options, Template, amplify};
use zk_traffic_benches::pcap::Capture;

/// Amplify real ZooKeeper captures into a large pcap for throughput benches.
///
/// The inputs (classic pcap) are concatenated into one template that is
/// replayed, `--concurrency` replicas at a time, until the output reaches
/// `--size-mb`. Each replica's clients get addresses of their own in
/// 10.0.0.0/8 (servers keep theirs); ports, sequence numbers and payloads are
/// unchanged, checksums are patched. Non-TCP frames are dropped; other link
/// types are rewritten as Ethernet.
#[derive(Debug, Parser)]
#[command(name = "zk-pcap-amplify", version, about)]
struct Args {
    /// Input capture(s), classic pcap, replayed in this order.
    #[arg(short, long, value_name = "FILE", num_args = 1.., required = true)]
    input: Vec<PathBuf>,

    /// Output pcap (overwritten).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,

    /// Size to reach, in MiB (the last replica is written whole).
    #[arg(long, value_name = "N", default_value_t = 300)]
    size_mb: u64,

    /// Replicas in flight at once (interleaved by timestamp).
    #[arg(long, value_name = "N", default_value_t = 64)]
    concurrency: usize,

    /// Extra server port, for telling clients from servers in connections
    /// whose SYN was not captured (2181, 2888, 3888 and the test captures'
    /// ports are known already). Repeatable.
    #[arg(short = 'p', long = "server-port", value_name = "PORT")]
    server_ports: Vec<u16>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let captures = args
        .input
        .iter()
        .map(|p| Capture::read(p))
        .collect::<Result<Vec<_>>>()?;
    let opts = Options {
        size_bytes: args.size_mb << 20,
        concurrency: args.concurrency,
        server_ports: args.server_ports,
        ..Options::default()
    };
    let template = Template::new(&captures, &opts)?;
    let replicas = template.replicas_for(opts.size_bytes);
    let out = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let stats = amplify(
        &template,
        replicas,
        &opts,
        BufWriter::with_capacity(1 << 20, out),
    )
    .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "zk-pcap-amplify: {} inputs, {} TCP packets per replica ({} non-TCP frames dropped), \
         {} replicas, {:.1}s",
        captures.len(),
        template.packets(),
        template.skipped,
        stats.replicas,
        started.elapsed().as_secs_f64()
    );
    // One machine-readable line on stdout (scripts/bench-e2e.sh reads it).
    println!(
        "packets={} bytes={} data_packets={} replicas={} span_s={:.3}",
        stats.packets,
        stats.bytes,
        stats.data_packets,
        stats.replicas,
        (stats.last_us - stats.first_us) as f64 / 1e6
    );
    Ok(())
}
