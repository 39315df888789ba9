//! virtio-console (virtio 1.2, section 5.3).
//!
//! Without [`VIRTIO_CONSOLE_F_MULTIPORT`] the device has one port and two
//! queues: [`RECEIVEQ`] carries bytes from the device to the driver (the
//! driver posts device-writable buffers), [`TRANSMITQ`] bytes from the
//! driver to the device (device-readable buffers).

/// Feature bit: `cols` and `rows` in the configuration are valid.
pub const VIRTIO_CONSOLE_F_SIZE: u32 = 0;
/// Feature bit: several ports and the control queues exist.
pub const VIRTIO_CONSOLE_F_MULTIPORT: u32 = 1;
/// Feature bit: the driver may write single characters to `emerg_wr`,
/// before or without setting up the queues.
pub const VIRTIO_CONSOLE_F_EMERG_WRITE: u32 = 2;

/// Queue index of port 0's receive queue (device to driver).
pub const RECEIVEQ: u16 = 0;
/// Queue index of port 0's transmit queue (driver to device).
pub const TRANSMITQ: u16 = 1;
/// Number of queues without [`VIRTIO_CONSOLE_F_MULTIPORT`].
pub const NUM_QUEUES: usize = 2;

/// The virtio-console configuration space, at [`super::mmio::CONFIG`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Config {
    /// Terminal width ([`VIRTIO_CONSOLE_F_SIZE`]).
    pub cols: u16,
    /// Terminal height ([`VIRTIO_CONSOLE_F_SIZE`]).
    pub rows: u16,
    /// Most ports ([`VIRTIO_CONSOLE_F_MULTIPORT`]).
    pub max_nr_ports: u32,
    /// Write-only: a character written here goes out at once
    /// ([`VIRTIO_CONSOLE_F_EMERG_WRITE`]).
    pub emerg_wr: u32,
}

/// Bytes of [`Config`].
pub const CONFIG_SIZE: usize = 12;
/// Offset of [`Config::emerg_wr`] in the configuration space.
pub const CONFIG_EMERG_WR_OFFSET: usize = 8;

impl Config {
    /// Encodes the configuration space as its little-endian bytes.
    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut b = [0u8; CONFIG_SIZE];
        b[0..2].copy_from_slice(&self.cols.to_le_bytes());
        b[2..4].copy_from_slice(&self.rows.to_le_bytes());
        b[4..8].copy_from_slice(&self.max_nr_ports.to_le_bytes());
        b[8..12].copy_from_slice(&self.emerg_wr.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn config_has_the_wire_layout() {
        assert_eq!(size_of::<Config>(), CONFIG_SIZE);
        assert_eq!(offset_of!(Config, emerg_wr), CONFIG_EMERG_WR_OFFSET);
        let b = Config {
            cols: 80,
            rows: 25,
            max_nr_ports: 1,
            emerg_wr: 0,
        }
        .to_bytes();
        assert_eq!(b[0..4], [80, 0, 25, 0]);
    }
}
