//! `zk-top`: a live, top-like view of ZooKeeper client traffic.
use clap::Parser;

fn main() {
    let args = zk_traffic::tui::TopArgs::parse();
    match zk_traffic::tui::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("zk-top: error: {e:#}");
            std::process::exit(1);
        }
    }
}
