//! The whole box: decoder, IP stack and HTTP server, one `poll` at a time.
//!
//! A host (the Linux binary, or an MCU's main loop) owns the device and
//! the clock and calls [`Appliance::poll`] whenever a frame may have
//! arrived or [`Appliance::poll_delay`] has passed. Each poll hands every
//! received frame to the decoder (through [`Promiscuous`]), lets smoltcp
//! answer ARP, ICMP echo and TCP for the appliance's own address, moves
//! the HTTP connections on, and flushes what they sent.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::Device;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use zk_wire::flow::Config;
use zk_wire::packet::LinkType;
use zk_wire::stats::Options;
use zk_wire::stats::export::Group;

use crate::decoder::Decoder;
use crate::http::{HttpServer, RESERVED_FOR_TRUSTED};
use crate::memory::Parts;
use crate::promisc::{FrameSink, HELD_FRAME, Promiscuous, Replay};
use crate::render::{Context, Identity};

/// How the appliance is set up.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'s> {
    /// Its MAC address.
    pub mac: EthernetAddress,
    /// Its address and prefix.
    pub ip: IpCidr,
    /// Default IPv4 gateway (for scrapers on other subnets).
    pub gateway: Option<Ipv4Address>,
    /// HTTP port.
    pub http_port: u16,
    /// ZooKeeper server ports to decode.
    pub zk_ports: &'s [u16],
    /// Largest ZooKeeper frame body accepted.
    pub max_frame: u32,
    /// Path aggregation depth (0: whole paths).
    pub aggregation_depth: usize,
    /// Rows per opname in `/json/paths` by default.
    pub max_results: usize,
    /// A random seed for TCP sequence numbers and ports.
    pub seed: u64,
}

/// The appliance.
pub struct Appliance<'a> {
    ends: Endpoints<'a>,
    http_addr: core::net::SocketAddr,
    iface: Interface,
    sockets: SocketSet<'a>,
    http: HttpServer<'a>,
}

/// What the endpoints read, apart from the HTTP server itself.
struct Endpoints<'a> {
    decoder: Decoder<'a>,
    scratch: &'a mut [Group],
    ports: heapless::Vec<u16, { zk_wire::flow::MAX_PORTS }>,
    mac: EthernetAddress,
    ip: IpCidr,
    max_results: usize,
    aggregation_depth: usize,
    started: Instant,
    state_bytes: usize,
    host: HostCounters,
}

impl<'a> Endpoints<'a> {
    fn context(&mut self, http: crate::http::HttpStats) -> Context<'_, 'a> {
        Context {
            decoder: &mut self.decoder,
            scratch: self.scratch,
            http,
            host: self.host,
            identity: Identity {
                ip: self.ip,
                mac: self.mac,
                ports: &self.ports,
                max_results: self.max_results,
                aggregation_depth: self.aggregation_depth,
                state_bytes: self.state_bytes,
            },
            started: self.started,
        }
    }
}

/// SYNs held back in one poll, at most.
const MAX_HELD: usize = 8;

type Held = heapless::Vec<heapless::Vec<u8, HELD_FRAME>, MAX_HELD>;

/// What sees every frame: the decoder, and the admission of SYNs to the
/// HTTP port (a SYN that would find no listening socket is held back so
/// that room can be made for it).
struct Ingress<'x, 'a> {
    decoder: &'x mut Decoder<'a>,
    http: core::net::SocketAddr,
    server: &'x HttpServer<'a>,
    free: usize,
    held: &'x mut Held,
    dropped: &'x mut u64,
}

impl FrameSink for Ingress<'_, '_> {
    fn frame(&mut self, ts: Instant, frame: &[u8]) -> bool {
        let Some(syn) = self.decoder.frame(ts, frame) else {
            return true;
        };
        if syn.dst != self.http {
            return true;
        }
        let reserve = if self.server.is_trusted(syn.src.ip()) {
            0
        } else {
            RESERVED_FOR_TRUSTED
        };
        if self.free > reserve {
            self.free -= 1;
            return true;
        }
        let kept = heapless::Vec::from_slice(frame)
            .ok()
            .is_some_and(|v| self.held.push(v).is_ok());
        if !kept {
            *self.dropped += 1;
        }
        false
    }
}

/// Counters only the host knows (its device's), shown on `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Frames the host's capture dropped before the appliance saw them.
    pub kernel_drops: u64,
    /// Frames longer than the device's buffer (decoded cut).
    pub truncated: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
}

/// Why an appliance could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// More ZooKeeper ports than zk-wire tracks.
    TooManyPorts,
    /// No HTTP socket fits the memory given.
    NoHttpSockets,
    /// The gateway is not IPv4 reachable from the address given.
    BadGateway,
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SetupError::TooManyPorts => "too many ZooKeeper ports",
            SetupError::NoHttpSockets => "no room for an HTTP socket",
            SetupError::BadGateway => "the gateway cannot be set",
        })
    }
}

impl<'a> Appliance<'a> {
    /// An appliance on `device`, in `parts`, started at `now`.
    pub fn new<D: Device>(
        s: &Settings<'_>,
        parts: Parts<'a>,
        device: &mut D,
        now: Instant,
    ) -> Result<Self, SetupError> {
        let mut config = Config::without_ports();
        let mut ports = heapless::Vec::new();
        for &p in s.zk_ports {
            if !config.add_port(p) || ports.push(p).is_err() {
                return Err(SetupError::TooManyPorts);
            }
        }
        config.max_frame_len = s.max_frame;
        let decoder = Decoder::new(
            parts.decoder,
            LinkType::Ethernet,
            config,
            Options {
                aggregation_depth: s.aggregation_depth,
            },
        );
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(s.mac));
        ic.random_seed = s.seed;
        let mut iface = Interface::new(ic, device, now);
        iface.update_ip_addrs(|a| {
            let _ = a.push(s.ip);
        });
        if let Some(gw) = s.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .map_err(|_| SetupError::BadGateway)?;
        }
        let n = parts.sockets.len();
        let mut sockets = SocketSet::new(parts.sockets);
        let buffers = Parts::socket_buffers(parts.socket_bytes, n);
        if buffers.is_empty() {
            return Err(SetupError::NoHttpSockets);
        }
        let http = HttpServer::new(s.http_port, buffers, parts.response, &mut sockets);
        tap_info!(
            "zk-tap: serving HTTP on port {} with {} sockets",
            s.http_port,
            http.sockets()
        );
        Ok(Appliance {
            ends: Endpoints {
                decoder,
                scratch: parts.scratch,
                ports,
                mac: s.mac,
                ip: s.ip,
                max_results: s.max_results,
                aggregation_depth: s.aggregation_depth,
                started: now,
                state_bytes: 0,
                host: HostCounters::default(),
            },
            http_addr: core::net::SocketAddr::new(s.ip.address().into(), s.http_port),
            iface,
            sockets,
            http,
        })
    }

    /// Sets the state size `/json/info` and `/metrics` report (the host
    /// knows what its memory struct weighs).
    pub fn set_state_bytes(&mut self, n: usize) {
        self.ends.state_bytes = n;
    }

    /// Updates the host's device counters.
    pub fn set_host_counters(&mut self, c: HostCounters) {
        self.ends.host = c;
    }

    /// Processes everything `device` has received, answers what is
    /// addressed to the appliance, and sends what is due. Returns true
    /// when anything happened.
    pub fn poll<D: Device>(&mut self, now: Instant, device: &mut D) -> bool {
        let frames = self.ends.decoder.health.frames;
        let mut busy = self.ingest(now, device);
        let mut ctx = self.ends.context(self.http.stats);
        self.http.poll(now, &mut self.sockets, &mut ctx);
        // Send what the HTTP server queued now, not on the next frame.
        busy |= self.ingest(now, device);
        busy || self.ends.decoder.health.frames != frames
    }

    /// One interface poll, with SYN admission: SYNs that found no socket
    /// for them each may take the place of the oldest untrusted half-open
    /// connection; without one they are dropped (the client retries).
    fn ingest<D: Device>(&mut self, now: Instant, device: &mut D) -> bool {
        let mut held = heapless::Vec::new();
        let free = self.http.free_listeners(&self.sockets);
        let mut busy = self.poll_iface(now, device, free, &mut held);
        for frame in &held {
            busy = true;
            if !self.http.evict_oldest_handshake(now, &mut self.sockets) {
                self.http.stats.syns_dropped += 1;
                continue;
            }
            let one = core::slice::from_ref(frame);
            let mut replay = Replay::new(device, one);
            self.iface.poll(now, &mut replay, &mut self.sockets);
        }
        busy
    }

    fn poll_iface<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        free: usize,
        held: &mut Held,
    ) -> bool {
        let mut dropped = 0;
        let mut sink = Ingress {
            decoder: &mut self.ends.decoder,
            http: self.http_addr,
            server: &self.http,
            free,
            held,
            dropped: &mut dropped,
        };
        let mut dev = Promiscuous {
            inner: device,
            sink: &mut sink,
        };
        let r =
            self.iface.poll(now, &mut dev, &mut self.sockets) != smoltcp::iface::PollResult::None;
        self.http.stats.syns_dropped += dropped;
        r
    }

    /// How long the host may wait for a frame before polling again.
    pub fn poll_delay(&mut self, now: Instant) -> Duration {
        // HTTP deadlines are checked on polls: wake at least this often.
        let cap = Duration::from_millis(100);
        match self.iface.poll_delay(now, &self.sockets) {
            Some(d) if d < cap => d,
            _ => cap,
        }
    }

    /// The decoder (tables, counters).
    pub fn decoder(&mut self) -> &mut Decoder<'a> {
        &mut self.ends.decoder
    }

    /// Renders an endpoint's body into `out` without a network, as a
    /// request for `target` (`/json/paths?top=0`) would get it.
    pub fn render(
        &mut self,
        now: Instant,
        target: &str,
        out: &mut crate::http::Cursor<'_>,
    ) -> crate::http::Status {
        use crate::http::Handler;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let req = crate::http::Request {
            method: "GET",
            path,
            query,
        };
        self.ends.context(self.http.stats).respond(now, &req, out)
    }

    /// The HTTP server's figures.
    pub fn http_stats(&self) -> crate::http::HttpStats {
        self.http.stats
    }
}
