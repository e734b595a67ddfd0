//! `fle-dump`: print ZooKeeper leader-election traffic (Fast Leader
//! Election, default port 3888), live or from a capture, and summarise the
//! elections it shows.

use anyhow::Result;
use clap::Parser;

use crate::quorum_dump::{self, CommonArgs, Tool};

/// Decode ZooKeeper leader election (FLE) traffic, live from an interface or from a pcap/pcapng file.
///
/// Prints each election connection's initial message (the sender's server
/// id and election address) and every vote notification (state, proposed
/// leader, zxid, election and peer epochs, message version, dynamic config).
/// With --summary, prints the elections instead: who voted for whom in
/// each round, the winner and how long the servers took to agree, and the
/// servers that joined an established leader. Counters go to stderr at exit.
#[derive(Debug, Parser)]
#[command(name = "fle-dump", version, about, long_about = None)]
pub struct Args {
    /// Election port (repeat for several).
    #[arg(short = 'p', long = "port", value_name = "PORT", default_values_t = [3888u16])]
    pub ports: Vec<u16>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs fle-dump; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    quorum_dump::run(Tool::Fle, &args.ports, args.common)
}
