//! `zk-dump`: decode ZooKeeper client traffic live or from a capture.
use clap::Parser;

fn main() {
    let args = zk_traffic::dump::Args::parse();
    match zk_traffic::dump::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("zk-dump: error: {e:#}");
            std::process::exit(1);
        }
    }
}
