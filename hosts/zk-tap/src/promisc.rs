//! Every frame to the decoder first: a [`Device`] wrapper.
//!
//! smoltcp's `Interface` drops frames that are not addressed to it, and a
//! mirror port delivers mostly frames addressed to others. The wrapper
//! hands each received frame to a [`FrameSink`] (the decoder) inside the
//! receive token, then lets the interface have it: no copy, no queue.

use smoltcp::phy::{Device, DeviceCapabilities, RxToken};
use smoltcp::time::Instant;

/// Something that looks at every received frame.
pub trait FrameSink {
    /// One frame, as received at `ts`; false keeps it from the interface.
    fn frame(&mut self, ts: Instant, frame: &[u8]) -> bool;
}

impl FrameSink for crate::decoder::Decoder<'_> {
    fn frame(&mut self, ts: Instant, frame: &[u8]) -> bool {
        crate::decoder::Decoder::frame(self, ts, frame);
        true
    }
}

/// `inner`, with every received frame shown to `sink` first.
pub struct Promiscuous<'d, D: Device, S: FrameSink> {
    /// The real device.
    pub inner: &'d mut D,
    /// Who sees every frame.
    pub sink: &'d mut S,
}

/// The receive token of [`Promiscuous`].
pub struct Rx<'t, R: RxToken, S: FrameSink> {
    inner: R,
    sink: &'t mut S,
    ts: Instant,
}

impl<R: RxToken, S: FrameSink> RxToken for Rx<'_, R, S> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        let Rx { inner, sink, ts } = self;
        inner.consume(|frame| {
            if sink.frame(ts, frame) {
                f(frame)
            } else {
                // An empty frame: the interface drops it.
                f(&[])
            }
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.inner.meta()
    }
}

/// Frames held back from the interface, handed to it later, ahead of
/// anything `inner` receives.
pub struct Replay<'d, D: Device> {
    /// The real device (for transmitting, and receiving once `frames` run out).
    pub inner: &'d mut D,
    /// The frames, in order.
    pub frames: &'d [heapless::Vec<u8, HELD_FRAME>],
    next: usize,
}

/// Longest frame held back (a SYN with every option fits in 128 bytes).
pub const HELD_FRAME: usize = 128;

impl<'d, D: Device> Replay<'d, D> {
    /// Replays `frames`, then nothing.
    pub fn new(inner: &'d mut D, frames: &'d [heapless::Vec<u8, HELD_FRAME>]) -> Self {
        Replay {
            inner,
            frames,
            next: 0,
        }
    }
}

/// A held-back frame's receive token.
pub struct Held<'t>(&'t [u8]);

impl RxToken for Held<'_> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        f(self.0)
    }
}

impl<D: Device> Device for Replay<'_, D> {
    type RxToken<'a>
        = Held<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, ts: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.frames.get(self.next)?;
        let tx = self.inner.transmit(ts)?;
        self.next += 1;
        Some((Held(frame), tx))
    }

    fn transmit(&mut self, ts: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(ts)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<D: Device, S: FrameSink> Device for Promiscuous<'_, D, S> {
    type RxToken<'a>
        = Rx<'a, D::RxToken<'a>, S>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, ts: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let Promiscuous { inner, sink } = self;
        let (rx, tx) = inner.receive(ts)?;
        Some((
            Rx {
                inner: rx,
                sink: &mut **sink,
                ts,
            },
            tx,
        ))
    }

    fn transmit(&mut self, ts: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(ts)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}
