//! `zk-stats`: capture ZooKeeper client traffic and serve statistics over HTTP.
use clap::Parser;

fn main() {
    let args = zk_traffic::stats::Args::parse();
    match zk_traffic::stats::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("zk-stats: error: {e:#}");
            std::process::exit(1);
        }
    }
}
