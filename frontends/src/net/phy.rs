//! smoltcp's view of the virtio-net driver: a [`Device`] whose tokens are
//! the driver's receive and transmit buffers, so a frame is parsed in
//! place in the buffer the device wrote, and built in place in the buffer
//! the device reads. Checksums are computed and checked in software (the
//! device offers no offloads).

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use protocol::virtio::net::ETH_HEADER;

use crate::virtio::net::{Net, RxFrame, TxFrame};

impl Device for Net {
    type RxToken<'a> = RxFrame<'a>;
    type TxToken<'a> = TxFrame<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxFrame<'_>, TxFrame<'_>)> {
        self.take_frame()
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxFrame<'_>> {
        self.take_tx()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // smoltcp's MTU on Ethernet counts the Ethernet header.
        caps.max_transmission_unit = usize::from(self.info().mtu) + ETH_HEADER;
        caps
    }
}

impl phy::RxToken for RxFrame<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.bytes())
    }
}

impl phy::TxToken for TxFrame<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.send(len, f)
    }
}
