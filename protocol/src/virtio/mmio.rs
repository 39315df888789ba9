//! The virtio-mmio transport, version 2 (virtio 1.2, section 4.2).
//!
//! A device is a window of [`WINDOW_SIZE`] bytes of guest-physical MMIO
//! space. Offsets below [`CONFIG`] are 32-bit registers and must be
//! accessed with aligned 4-byte loads and stores; from [`CONFIG`] on sits
//! the device-specific configuration space (see [`super::blk`] and
//! [`super::console`]), accessed with the natural width of each field.
//!
//! 64-bit quantities (features, ring addresses) are split in two 32-bit
//! halves: features through a selector register (`*_SEL` = 0 for bits
//! 0..32, 1 for bits 32..64), addresses as `*_LOW` / `*_HIGH` pairs.
//!
//! Legacy (version 1) registers such as `QueuePFN` are not part of this
//! transport; a device answers them like any unknown offset.

/// Bytes of MMIO space one virtio-mmio device occupies.
pub const WINDOW_SIZE: u64 = 0x1000;

/// Value of [`MAGIC_VALUE`]: "virt" in little-endian ASCII.
pub const MAGIC: u32 = 0x7472_6976;
/// Value of [`VERSION`] for the modern (non-legacy) transport.
pub const VERSION_2: u32 = 2;
/// Vendor id this project's devices report: "HYPV" in little-endian ASCII.
pub const VENDOR_ID_HYP: u32 = u32::from_le_bytes(*b"HYPV");

/// R: magic value, always [`MAGIC`].
pub const MAGIC_VALUE: u64 = 0x000;
/// R: transport version, [`VERSION_2`].
pub const VERSION: u64 = 0x004;
/// R: the virtio device type (`DEVICE_ID_*`); 0 means no device.
pub const DEVICE_ID: u64 = 0x008;
/// R: the vendor id.
pub const VENDOR_ID: u64 = 0x00c;
/// R: 32 bits of the device's feature set, chosen by
/// [`DEVICE_FEATURES_SEL`].
pub const DEVICE_FEATURES: u64 = 0x010;
/// W: which 32-bit word [`DEVICE_FEATURES`] shows.
pub const DEVICE_FEATURES_SEL: u64 = 0x014;
/// W: 32 bits of the features the driver accepted, chosen by
/// [`DRIVER_FEATURES_SEL`].
pub const DRIVER_FEATURES: u64 = 0x020;
/// W: which 32-bit word [`DRIVER_FEATURES`] sets.
pub const DRIVER_FEATURES_SEL: u64 = 0x024;
/// W: which virtqueue the `QUEUE_*` registers refer to.
pub const QUEUE_SEL: u64 = 0x030;
/// R: largest queue size the device supports for the selected queue; 0 if
/// the queue does not exist.
pub const QUEUE_NUM_MAX: u64 = 0x034;
/// W: queue size the driver chose (a power of two, at most
/// [`QUEUE_NUM_MAX`]).
pub const QUEUE_NUM: u64 = 0x038;
/// RW: 1 once the driver has set the selected queue up; writing 0 is not
/// allowed while the device runs.
pub const QUEUE_READY: u64 = 0x044;
/// W: the driver has made buffers available in the queue whose index it
/// writes (a queue notification, "kick").
pub const QUEUE_NOTIFY: u64 = 0x050;
/// R: why the device raised its interrupt (`INT_*` bits).
pub const INTERRUPT_STATUS: u64 = 0x060;
/// W: clears the `INT_*` bits written.
pub const INTERRUPT_ACK: u64 = 0x064;
/// RW: device status (`STATUS_*` bits); writing 0 resets the device.
pub const STATUS: u64 = 0x070;
/// W: guest-physical address of the descriptor table, low 32 bits.
pub const QUEUE_DESC_LOW: u64 = 0x080;
/// W: guest-physical address of the descriptor table, high 32 bits.
pub const QUEUE_DESC_HIGH: u64 = 0x084;
/// W: guest-physical address of the available ring ("driver area"), low.
pub const QUEUE_AVAIL_LOW: u64 = 0x090;
/// W: guest-physical address of the available ring, high 32 bits.
pub const QUEUE_AVAIL_HIGH: u64 = 0x094;
/// W: guest-physical address of the used ring ("device area"), low.
pub const QUEUE_USED_LOW: u64 = 0x0a0;
/// W: guest-physical address of the used ring, high 32 bits.
pub const QUEUE_USED_HIGH: u64 = 0x0a4;
/// W: which shared-memory region the `SHM_*` registers describe.
pub const SHM_SEL: u64 = 0x0ac;
/// R: length of the selected shared-memory region, low 32 bits (all ones
/// when the region does not exist).
pub const SHM_LEN_LOW: u64 = 0x0b0;
/// R: length of the selected shared-memory region, high 32 bits.
pub const SHM_LEN_HIGH: u64 = 0x0b4;
/// R: base of the selected shared-memory region, low 32 bits.
pub const SHM_BASE_LOW: u64 = 0x0b8;
/// R: base of the selected shared-memory region, high 32 bits.
pub const SHM_BASE_HIGH: u64 = 0x0bc;
/// RW: per-queue reset (only with `VIRTIO_F_RING_RESET`).
pub const QUEUE_RESET: u64 = 0x0c0;
/// R: changes whenever the configuration space changes, so the driver can
/// read multi-field configuration atomically (read it before and after).
pub const CONFIG_GENERATION: u64 = 0x0fc;
/// Start of the device-specific configuration space.
pub const CONFIG: u64 = 0x100;

/// Width, in bytes, of every register below [`CONFIG`].
pub const REGISTER_WIDTH: u8 = 4;

/// [`INTERRUPT_STATUS`] bit: the device used buffers in a queue.
pub const INT_USED_BUFFER: u32 = 1 << 0;
/// [`INTERRUPT_STATUS`] bit: the configuration space changed (or the device
/// set [`STATUS_DEVICE_NEEDS_RESET`]).
pub const INT_CONFIG_CHANGE: u32 = 1 << 1;

/// Device status: the guest noticed the device.
pub const STATUS_ACKNOWLEDGE: u32 = 1;
/// Device status: the guest has a driver for it.
pub const STATUS_DRIVER: u32 = 2;
/// Device status: the driver is set up and ready to drive the device.
pub const STATUS_DRIVER_OK: u32 = 4;
/// Device status: feature negotiation is complete (the device clears it
/// again if it does not accept the driver's features).
pub const STATUS_FEATURES_OK: u32 = 8;
/// Device status, set by the device: it hit an error it cannot recover
/// from (for example a malformed ring) and needs a reset.
pub const STATUS_DEVICE_NEEDS_RESET: u32 = 0x40;
/// Device status: the driver gave up on the device.
pub const STATUS_FAILED: u32 = 0x80;

/// Virtio device type: network card.
pub const DEVICE_ID_NET: u32 = 1;
/// Virtio device type: block device.
pub const DEVICE_ID_BLOCK: u32 = 2;
/// Virtio device type: console.
pub const DEVICE_ID_CONSOLE: u32 = 3;
/// Virtio device type: entropy source.
pub const DEVICE_ID_RNG: u32 = 4;

/// The size a driver may choose for any queue is at most this (split
/// virtqueues, virtio 1.2 section 2.7).
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// The queue size every device of this project offers in
/// [`QUEUE_NUM_MAX`], in Domain-0 and in the host model alike.
pub const OFFERED_QUEUE_SIZE: u16 = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_reads_as_virt() {
        assert_eq!(&MAGIC.to_le_bytes(), b"virt");
    }

    #[test]
    fn registers_are_word_aligned_and_below_config() {
        for reg in [
            MAGIC_VALUE,
            VERSION,
            DEVICE_ID,
            VENDOR_ID,
            DEVICE_FEATURES,
            DEVICE_FEATURES_SEL,
            DRIVER_FEATURES,
            DRIVER_FEATURES_SEL,
            QUEUE_SEL,
            QUEUE_NUM_MAX,
            QUEUE_NUM,
            QUEUE_READY,
            QUEUE_NOTIFY,
            INTERRUPT_STATUS,
            INTERRUPT_ACK,
            STATUS,
            QUEUE_DESC_LOW,
            QUEUE_DESC_HIGH,
            QUEUE_AVAIL_LOW,
            QUEUE_AVAIL_HIGH,
            QUEUE_USED_LOW,
            QUEUE_USED_HIGH,
            SHM_SEL,
            QUEUE_RESET,
            CONFIG_GENERATION,
        ] {
            assert_eq!(reg % REGISTER_WIDTH as u64, 0, "{reg:#x}");
            assert!(reg < CONFIG);
        }
    }
}
