//! `zab-dump`: print ZooKeeper quorum traffic (ZAB, between the leader and
//! its followers and observers, default port 2888), live or from a
//! capture, and measure it.

use anyhow::Result;
use clap::Parser;

use crate::quorum_dump::{self, CommonArgs, Tool};

/// Decode ZooKeeper quorum (ZAB) traffic, live from an interface or from a pcap/pcapng file.
///
/// Prints every quorum packet with its zxid and decoded data: forwarded
/// requests, proposals (transaction type, session, path), acks, commits,
/// the learner handshake (FOLLOWERINFO, LEADERINFO, ACKEPOCH), the sync
/// (DIFF, TRUNC, SNAP and the snapshot after it, NEWLEADER, UPTODATE),
/// revalidations and reconfigs. PINGs are hidden unless --include-pings.
/// With --summary, prints the commit-latency percentiles (first PROPOSAL to
/// first COMMIT), each follower's ack lag, the leaders and how each learner
/// synchronised. Counters go to stderr at exit.
#[derive(Debug, Parser)]
#[command(name = "zab-dump", version, about, long_about = None)]
pub struct Args {
    /// Quorum (leader) port (repeat for several).
    #[arg(short = 'p', long = "port", value_name = "PORT", default_values_t = [2888u16])]
    pub ports: Vec<u16>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs zab-dump; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    quorum_dump::run(Tool::Zab, &args.ports, args.common)
}
