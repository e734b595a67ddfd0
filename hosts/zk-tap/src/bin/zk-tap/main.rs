//! zk-tap: ZooKeeper traffic stats on a mirror (SPAN) port, served over
//! the appliance's own IP stack.
//!
//! Opens IFACE as a promiscuous packet socket, decodes every ZooKeeper
//! frame it sees into fixed-size stats tables, and answers HTTP on its own
//! address (smoltcp, not the kernel: the interface needs no kernel IP):
//! `GET /metrics` (Prometheus), `GET /json/paths`, `GET /json/info`.
//!
//! With `--offline FILE` it runs the same core over a classic pcap file
//! and prints one endpoint's body (`--print /json/paths?top=0`): the
//! appliance's view of a capture, to compare with `zk-stats --offline`.

mod afpacket;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser;
use smoltcp::iface::SocketStorage;
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};
use zk_tap::appliance::HostCounters;
use zk_tap::decoder::DecoderParts;
use zk_tap::http::Cursor;
use zk_tap::memory::{HTTP_RX, HTTP_TX};
use zk_tap::{Appliance, Parts, Settings};
use zk_wire::flow::Flow;
use zk_wire::pcapfile::PcapFile;
use zk_wire::stats::Slot;
use zk_wire::stats::export::{Group, OPNAMES_PER_ROW};

use afpacket::PacketSocket;

/// ZooKeeper traffic statistics on a mirror port, served by the
/// appliance's own IP stack.
///
/// Plug IFACE into a switch's mirror (SPAN) port, give the appliance an
/// address on a network Prometheus can reach, and scrape
/// http://ADDR:HTTP_PORT/metrics. IFACE must have no kernel address: the
/// appliance answers ARP, ping and HTTP itself.
#[derive(Debug, Parser)]
#[command(name = "zk-tap", version)]
struct Args {
    /// Interface on the mirror port (set to promiscuous mode while running).
    #[arg(short, long, required_unless_present = "offline")]
    iface: Option<String>,
    /// The appliance's address and prefix length (e.g. 10.0.9.20/24).
    #[arg(long, required_unless_present = "offline", value_parser = parse_cidr)]
    ip: Option<IpCidr>,
    /// Default gateway, for scrapers outside the appliance's subnet.
    #[arg(long)]
    gateway: Option<Ipv4Address>,
    /// MAC address to answer with (default: the interface's own).
    #[arg(long, value_parser = parse_mac)]
    mac: Option<EthernetAddress>,
    /// HTTP port.
    #[arg(long, default_value_t = 80)]
    http_port: u16,
    /// ZooKeeper client port to decode (repeatable).
    #[arg(short, long = "port", default_values_t = [2181])]
    ports: Vec<u16>,
    /// Keep the first D path components in the tables (0: whole paths).
    #[arg(long, default_value_t = 0)]
    aggregation_depth: usize,
    /// Rows per opname in /json/paths (0: all).
    #[arg(long, default_value_t = 10)]
    max_results: usize,
    /// Connection slots (rounded down to a multiple of 8).
    #[arg(long, default_value_t = 4096)]
    max_flows: usize,
    /// Reassembly chunks.
    #[arg(long, default_value_t = 1024)]
    chunks: usize,
    /// Bytes per reassembly chunk (larger frames are decoded from their start).
    #[arg(long, default_value_t = 16384)]
    chunk_size: usize,
    /// Counters of the per-path table.
    #[arg(long, default_value_t = 4096)]
    max_paths: usize,
    /// Counters of the per-client table.
    #[arg(long, default_value_t = 1024)]
    max_clients: usize,
    /// Counters of the per-identity table.
    #[arg(long, default_value_t = 256)]
    max_auths: usize,
    /// Largest ZooKeeper frame body accepted (jute.maxbuffer and slack).
    #[arg(long, default_value_t = 1024 * 1024 + 1024)]
    max_frame: u32,
    /// HTTP connections served at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    http_sockets: u8,
    /// Bytes of the response buffer (the largest response).
    #[arg(long, default_value_t = 1024 * 1024)]
    response_bytes: usize,
    /// Run the core over a classic pcap file instead of an interface.
    #[arg(long, value_name = "FILE")]
    offline: Option<std::path::PathBuf>,
    /// With --offline: the endpoint to print (e.g. /json/paths?top=0).
    #[arg(long, default_value = "/json/paths", requires = "offline")]
    print: String,
}

fn parse_cidr(s: &str) -> Result<IpCidr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not ADDRESS/PREFIX (e.g. 10.0.9.20/24)"))
}

fn parse_mac(s: &str) -> Result<EthernetAddress, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a MAC address (e.g. 02:00:00:00:00:01)"))
}

/// Microseconds since the epoch, as smoltcp's clock.
fn now() -> Instant {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Instant::from_micros(us)
}

/// Heap slices for every part, sized by the flags; they live as long as
/// the process.
fn parts(a: &Args) -> (Parts<'static>, usize) {
    let flows = vec![Flow::EMPTY; a.max_flows.max(8)].leak();
    let chunks = vec![0u8; a.chunks.saturating_mul(a.chunk_size)].leak();
    let slots = |n: usize| vec![Slot::EMPTY; n.max(1)].leak();
    let (paths, ips, auths) = (slots(a.max_paths), slots(a.max_clients), slots(a.max_auths));
    let scratch = vec![Group::EMPTY; OPNAMES_PER_ROW * paths.len()].leak();
    let n = usize::from(a.http_sockets);
    let sockets: &'static mut [SocketStorage<'static>] = (0..n)
        .map(|_| SocketStorage::EMPTY)
        .collect::<Vec<_>>()
        .leak();
    let socket_bytes = vec![0u8; n * (HTTP_RX + HTTP_TX)].leak();
    let response = vec![0u8; a.response_bytes.max(4096)].leak();
    let bytes = std::mem::size_of_val(&*flows)
        + chunks.len()
        + std::mem::size_of_val(&*paths)
        + std::mem::size_of_val(&*ips)
        + std::mem::size_of_val(&*auths)
        + std::mem::size_of_val(&*scratch)
        + std::mem::size_of_val(&*sockets)
        + socket_bytes.len()
        + response.len();
    (
        Parts {
            decoder: DecoderParts {
                flows,
                chunks,
                chunk_size: a.chunk_size,
                paths,
                ips,
                auths,
            },
            scratch,
            sockets,
            socket_bytes,
            response,
        },
        bytes,
    )
}

/// A device that never receives and drops what it is given (offline runs).
struct Null;

impl Device for Null {
    type RxToken<'a> = NullRx;
    type TxToken<'a> = NullTx;
    fn receive(&mut self, _: Instant) -> Option<(NullRx, NullTx)> {
        None
    }
    fn transmit(&mut self, _: Instant) -> Option<NullTx> {
        None
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

struct NullRx;
impl smoltcp::phy::RxToken for NullRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&[])
    }
}
struct NullTx;
impl smoltcp::phy::TxToken for NullTx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        f(&mut vec![0; len])
    }
}

fn settings<'s>(a: &'s Args, mac: EthernetAddress, ip: IpCidr) -> Settings<'s> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    Settings {
        mac,
        ip,
        gateway: a.gateway,
        http_port: a.http_port,
        zk_ports: &a.ports,
        max_frame: a.max_frame,
        aggregation_depth: a.aggregation_depth,
        max_results: a.max_results,
        seed,
    }
}

fn offline(a: &Args, file: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let pcap = PcapFile::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a classic pcap file ({e:?})", file.display()))?;
    let link = zk_wire::packet::LinkType::from_linktype(pcap.header().linktype);
    if link != Some(zk_wire::packet::LinkType::Ethernet) {
        bail!(
            "{}: link type {} is not Ethernet (what a mirror port carries)",
            file.display(),
            pcap.header().linktype
        );
    }
    let (parts, bytes_used) = parts(a);
    let ip =
        a.ip.unwrap_or(IpCidr::new(Ipv4Address::new(192, 0, 2, 1).into(), 24));
    let s = settings(a, a.mac.unwrap_or(EthernetAddress([2, 0, 0, 0, 0, 1])), ip);
    let nanos = pcap.header().nanos;
    // The capture's clock: uptime and timestamps are the file's.
    let start = match pcap.records().next() {
        Some(Ok(r)) => r.ts(nanos),
        _ => now(),
    };
    let mut app =
        Appliance::new(&s, parts, &mut Null, start).map_err(|e| anyhow::anyhow!("{e}"))?;
    app.set_state_bytes(bytes_used);
    let mut last = start;
    let mut records = pcap.records();
    for r in &mut records {
        match r {
            Ok(r) => {
                last = r.ts(nanos);
                let _ = app.decoder().frame(last, r.data);
            }
            Err(e) => {
                eprintln!(
                    "zk-tap: {}: cut record ({e:?}); what came before is kept",
                    file.display()
                );
                break;
            }
        }
    }
    app.decoder().finish(last);
    let mut out = vec![0u8; a.response_bytes.max(4096)];
    let mut c = Cursor::new(&mut out);
    let status = app.render(last, &a.print, &mut c);
    if c.overflowed() {
        bail!(
            "the response does not fit --response-bytes {}",
            a.response_bytes
        );
    }
    use std::io::Write;
    std::io::stdout().write_all(c.as_bytes())?;
    if status.code != 200 {
        bail!("{} answered {}", a.print, status.code);
    }
    Ok(())
}

fn live(a: &Args, iface: &str, ip: IpCidr) -> anyhow::Result<()> {
    let mac = match a.mac {
        Some(m) => m,
        None => PacketSocket::mac(iface).with_context(|| format!("MAC address of {iface}"))?,
    };
    let mut dev = PacketSocket::open(iface)
        .with_context(|| format!("opening {iface} (needs root or CAP_NET_RAW)"))?;
    let (parts, bytes_used) = parts(a);
    let s = settings(a, mac, ip);
    let mut app = Appliance::new(&s, parts, &mut dev, now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    app.set_state_bytes(bytes_used);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    ctrlc::set_handler(move || s2.store(true, Ordering::SeqCst)).context("signal handler")?;
    eprintln!(
        "zk-tap: {iface} (promiscuous) as {ip} {mac}, http://{}:{}/metrics, ZooKeeper ports {:?}, {} MiB of state",
        ip.address(),
        a.http_port,
        a.ports,
        bytes_used >> 20
    );
    let mut last_stats = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let t = now();
        if !app.poll(t, &mut dev) {
            let d = app.poll_delay(t);
            dev.wait(d.total_millis().min(100) as i32);
        }
        if last_stats.elapsed().as_millis() >= 500 {
            dev.update_drops();
            let st = dev.stats;
            app.set_host_counters(HostCounters {
                kernel_drops: st.kernel_drops,
                truncated: st.truncated,
                rx_errors: st.rx_errors,
                tx_errors: st.tx_errors,
            });
            last_stats = std::time::Instant::now();
        }
    }
    dev.update_drops();
    let h = app.decoder().health;
    let st = dev.stats;
    eprintln!(
        "zk-tap: packets={} bytes={} kernel_drops={} truncated={} rx_errors={}",
        h.frames, h.bytes, st.kernel_drops, st.truncated, st.rx_errors
    );
    Ok(())
}

fn main() -> ExitCode {
    let a = Args::parse();
    let level = if a.offline.is_some() { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .init();
    let r = match (&a.offline, &a.iface, a.ip) {
        (Some(f), _, _) => offline(&a, f),
        (None, Some(i), Some(ip)) => live(&a, i, ip),
        _ => Err(anyhow::anyhow!("--iface and --ip, or --offline")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zk-tap: {e:#}");
            ExitCode::from(1)
        }
    }
}
