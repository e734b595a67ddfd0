//! no_std, no alloc firmware shape of zk-tap (see Cargo.toml): the
//! appliance in statics, fed by an Ethernet MAC's receive descriptor.
#![no_std]

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};
use zk_tap::memory::EmbeddedMemory;
use zk_tap::{Appliance, Settings};

/// The receive buffer an Ethernet MAC's DMA fills (a stand-in for a real
/// driver: its length word says how many bytes arrived, 0 for none).
static mut RX_LEN: usize = 0;
static mut RX: [u8; 1536] = [0; 1536];
static mut TX: [u8; 1536] = [0; 1536];
static mut TX_LEN: usize = 0;

static mut MEM: EmbeddedMemory<'static> = EmbeddedMemory::new();
static mut APP: Option<Appliance<'static>> = None;

struct Mac;
struct Rx;
struct Tx;

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        // SAFETY: single-threaded firmware; the DMA is done with RX when
        // RX_LEN is non-zero.
        unsafe {
            let n = read_volatile(addr_of_mut!(RX_LEN)).min(1536);
            let rx = &*addr_of_mut!(RX);
            let r = f(&rx[..n]);
            write_volatile(addr_of_mut!(RX_LEN), 0);
            r
        }
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // SAFETY: as above.
        unsafe {
            let n = len.min(1536);
            let tx = &mut *addr_of_mut!(TX);
            let r = f(&mut tx[..n]);
            write_volatile(addr_of_mut!(TX_LEN), n);
            r
        }
    }
}

impl Device for Mac {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;
    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        // SAFETY: a volatile read of the DMA's length word.
        (unsafe { read_volatile(addr_of_mut!(RX_LEN)) } > 0).then_some((Rx, Tx))
    }
    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx)
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

/// Sets the appliance up (once, at boot).
#[unsafe(no_mangle)]
pub extern "C" fn zk_tap_init(now_ms: i64) -> bool {
    let ports = [2181u16];
    let s = Settings {
        mac: EthernetAddress([0x02, 0, 0, 0x2a, 0x21, 0x81]),
        ip: IpCidr::new(Ipv4Address::new(10, 0, 9, 20).into(), 24),
        gateway: Some(Ipv4Address::new(10, 0, 9, 1)),
        http_port: 80,
        zk_ports: &ports,
        max_frame: 1024 * 1024 + 1024,
        aggregation_depth: 0,
        max_results: 10,
        seed: 0x5eed,
    };
    // SAFETY: called once at boot, before any poll, by the one thread.
    unsafe {
        let mem = &mut *addr_of_mut!(MEM);
        match Appliance::new(&s, mem.parts(), &mut Mac, Instant::from_millis(now_ms)) {
            Ok(a) => {
                *addr_of_mut!(APP) = Some(a);
                true
            }
            Err(_) => false,
        }
    }
}

/// One turn of the main loop; returns the milliseconds it may sleep.
#[unsafe(no_mangle)]
pub extern "C" fn zk_tap_poll(now_ms: i64) -> u64 {
    // SAFETY: the one thread; APP was set by zk_tap_init.
    unsafe {
        match &mut *addr_of_mut!(APP) {
            Some(app) => {
                let now = Instant::from_millis(now_ms);
                app.poll(now, &mut Mac);
                app.poll_delay(now).total_millis()
            }
            None => 1000,
        }
    }
}

/// Bytes of the appliance's state: its memory and the core.
#[unsafe(no_mangle)]
pub extern "C" fn zk_tap_state_bytes() -> usize {
    core::mem::size_of::<EmbeddedMemory<'static>>() + core::mem::size_of::<Appliance<'static>>()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
