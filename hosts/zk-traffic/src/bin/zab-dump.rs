//! `zab-dump`: see `zk_traffic::zab_dump`.
use clap::Parser;

fn main() {
    let args = zk_traffic::zab_dump::Args::parse();
    match zk_traffic::zab_dump::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("zab-dump: error: {e:#}");
            std::process::exit(1);
        }
    }
}
