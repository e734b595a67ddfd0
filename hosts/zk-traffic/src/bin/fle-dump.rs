//! `fle-dump`: see `zk_traffic::fle_dump`.
use clap::Parser;

fn main() {
    let args = zk_traffic::fle_dump::Args::parse();
    match zk_traffic::fle_dump::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("fle-dump: error: {e:#}");
            std::process::exit(1);
        }
    }
}
