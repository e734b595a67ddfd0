//! `zk-omni-dump`: see `zk_traffic::quorum_omni`.
use clap::Parser;

fn main() {
    let args = zk_traffic::quorum_omni::Args::parse();
    match zk_traffic::quorum_omni::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("zk-omni-dump: error: {e:#}");
            std::process::exit(1);
        }
    }
}
