//! A Linux `AF_PACKET` socket as a smoltcp [`Device`], in promiscuous mode.
//!
//! smoltcp's own `phy::RawSocket` would do for a lab, but not on a mirror
//! port: it allocates a buffer per frame, reads at most the MTU (the
//! kernel hands a packet socket frames larger than that when offloads
//! merge segments, and they would be cut silently), panics on a read
//! error (an interface going down), and leaves the interface
//! non-promiscuous. This device reads into one reusable buffer with
//! `MSG_TRUNC` (so a cut frame is counted, never silent), turns errors
//! into counters, joins the interface's promiscuous membership (dropped by
//! the kernel when the socket closes) and reports the kernel's own drop
//! counter (`PACKET_STATISTICS`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;

/// Largest frame read whole (a GRO/GSO super-frame is up to 64 KiB).
const RX_BUFFER: usize = 256 * 1024;
/// Socket receive buffer asked of the kernel (frames waiting to be read).
const SO_RCVBUF_BYTES: i32 = 32 * 1024 * 1024;

/// Counters of the device itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceStats {
    /// Frames longer than the receive buffer (decoded cut).
    pub truncated: u64,
    /// Receive errors other than "nothing to read".
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Frames the kernel dropped because the socket's buffer was full.
    pub kernel_drops: u64,
}

/// An `AF_PACKET` socket bound to one interface.
pub struct PacketSocket {
    fd: OwnedFd,
    rx: Vec<u8>,
    rx_len: usize,
    tx: Vec<u8>,
    mtu: usize,
    /// Counters.
    pub stats: DeviceStats,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &s) in r.ifr_name.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    Ok(r)
}

impl PacketSocket {
    /// Opens a packet socket on `iface`, promiscuous.
    pub fn open(iface: &str) -> io::Result<PacketSocket> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain syscalls; every pointer passed points at a live,
        // properly sized value of the type the call expects.
        unsafe {
            let raw = check(libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            ))?;
            let fd = OwnedFd::from_raw_fd(raw);
            let mut req = ifreq(iface)?;
            check(libc::ioctl(raw, libc::SIOCGIFINDEX, &mut req))
                .map_err(|e| io::Error::new(e.kind(), format!("interface {iface}: {e}")))?;
            let ifindex = req.ifr_ifru.ifru_ifindex;
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex;
            check(libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            ))?;
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            check(libc::setsockopt(
                raw,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&mreq as *const libc::packet_mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            ))?;
            // A large buffer absorbs bursts; FORCE needs CAP_NET_ADMIN,
            // the plain one is capped by net.core.rmem_max.
            let size = SO_RCVBUF_BYTES;
            let p = (&size as *const i32).cast();
            let n = std::mem::size_of::<i32>() as libc::socklen_t;
            if libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, n) < 0 {
                let _ = libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, p, n);
            }
            let mut req = ifreq(iface)?;
            check(libc::ioctl(raw, libc::SIOCGIFMTU, &mut req))?;
            let mtu = req.ifr_ifru.ifru_mtu as usize;
            Ok(PacketSocket {
                fd,
                rx: vec![0; RX_BUFFER],
                rx_len: 0,
                tx: vec![0; RX_BUFFER],
                // smoltcp counts the Ethernet header in the MTU.
                mtu: mtu + 14,
                stats: DeviceStats::default(),
            })
        }
    }

    /// The interface's own MAC address.
    pub fn mac(iface: &str) -> io::Result<EthernetAddress> {
        // SAFETY: as in `open`.
        unsafe {
            let raw = check(libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                0,
            ))?;
            let _fd = OwnedFd::from_raw_fd(raw);
            let mut req = ifreq(iface)?;
            check(libc::ioctl(raw, libc::SIOCGIFHWADDR, &mut req))?;
            let a = req.ifr_ifru.ifru_hwaddr.sa_data;
            Ok(EthernetAddress([
                a[0] as u8, a[1] as u8, a[2] as u8, a[3] as u8, a[4] as u8, a[5] as u8,
            ]))
        }
    }

    /// Waits until a frame may be read, for at most `timeout_ms`.
    pub fn wait(&self, timeout_ms: i32) {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe {
            libc::poll(&mut p, 1, timeout_ms);
        }
    }

    /// Reads the kernel's drop counter (it resets on each read, so this
    /// adds to the running total).
    pub fn update_drops(&mut self) {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `st`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.stats.kernel_drops += u64::from(st.tp_drops);
        }
    }

    fn recv(&mut self) -> bool {
        // SAFETY: reads at most rx.len() bytes into rx.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.rx.as_mut_ptr().cast(),
                self.rx.len(),
                libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                self.stats.rx_errors += 1;
            }
            return false;
        }
        let n = n as usize;
        if n > self.rx.len() {
            self.stats.truncated += 1;
        }
        self.rx_len = n.min(self.rx.len());
        true
    }
}

/// A received frame.
pub struct Rx<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Room for one frame to send.
pub struct Tx<'a> {
    fd: RawFd,
    buf: &'a mut [u8],
    errors: &'a mut u64,
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(self.buf.len());
        let r = f(&mut self.buf[..len]);
        // SAFETY: sends `len` initialised bytes of buf.
        let n = unsafe { libc::send(self.fd, self.buf.as_ptr().cast(), len, 0) };
        if n < 0 {
            *self.errors += 1;
        }
        r
    }
}

impl Device for PacketSocket {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _ts: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        if !self.recv() {
            return None;
        }
        let fd = self.fd.as_raw_fd();
        Some((
            Rx {
                frame: &self.rx[..self.rx_len],
            },
            Tx {
                fd,
                buf: &mut self.tx,
                errors: &mut self.stats.tx_errors,
            },
        ))
    }

    fn transmit(&mut self, _ts: Instant) -> Option<Tx<'_>> {
        Some(Tx {
            fd: self.fd.as_raw_fd(),
            buf: &mut self.tx,
            errors: &mut self.stats.tx_errors,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.mtu;
        // A packet socket sees frames whose L4 checksums the sender left
        // to offload (veths, and local senders on the same host): they
        // are not computed yet. Compute ours, trust the kernel's.
        c.checksum.tcp = Checksum::Tx;
        c.checksum.udp = Checksum::Tx;
        c.checksum.icmpv4 = Checksum::Tx;
        c.checksum.icmpv6 = Checksum::Tx;
        c
    }
}
