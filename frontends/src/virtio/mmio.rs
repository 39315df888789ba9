//! The driver side of the virtio-mmio (version 2) transport.
//!
//! Every register access except `QueueNotify` leaves the guest: the core
//! forwards it to Domain-0's device model as an ioreq and waits for the
//! answer (about 100 µs here). So the registers are touched while a device
//! is set up, reset or checked, and never on the data path; queue
//! notifications are 4-byte writes of the queue index to `QueueNotify`,
//! which KVM completes in the kernel through an ioeventfd.
//!
//! [`Transport::init`] follows the virtio 1.2 driver initialisation
//! sequence (section 3.1.1): reset, ACKNOWLEDGE, DRIVER, feature
//! negotiation, FEATURES_OK (read back), queue setup, DRIVER_OK.

use core::fmt;

use protocol::device::GuestDevice;
use protocol::virtio::features::VIRTIO_F_VERSION_1;
use protocol::virtio::mmio as reg;
use protocol::virtio::{feature, queue::is_valid_size};

/// Why a device could not be brought up (or stopped working).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The window does not answer with the virtio magic value.
    BadMagic(u32),
    /// The transport is not version 2.
    BadVersion(u32),
    /// The window holds a different kind of device (or none: 0).
    WrongDevice(u32),
    /// A feature the driver cannot work without is not offered.
    MissingFeatures(u64),
    /// The device cleared FEATURES_OK: it refused the features chosen.
    FeaturesRefused,
    /// The queue does not exist (`QueueNumMax` is 0).
    NoQueue(u16),
    /// The device did not accept DRIVER_OK (status read back).
    NotLive(u32),
    /// The device set DEVICE_NEEDS_RESET.
    NeedsReset(u32),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic(v) => write!(f, "bad magic {v:#x}"),
            Self::BadVersion(v) => write!(f, "transport version {v}, want 2"),
            Self::WrongDevice(v) => write!(f, "device id {v}"),
            Self::MissingFeatures(v) => write!(f, "required features {v:#x} not offered"),
            Self::FeaturesRefused => write!(f, "device refused the features (FEATURES_OK clear)"),
            Self::NoQueue(q) => write!(f, "queue {q} does not exist"),
            Self::NotLive(s) => write!(f, "DRIVER_OK not accepted (status {s:#x})"),
            Self::NeedsReset(s) => write!(f, "device needs reset (status {s:#x})"),
        }
    }
}

/// Ring addresses of one queue, as written to the queue registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddrs {
    /// Descriptor table.
    pub desc: u64,
    /// Available ring ("driver area").
    pub avail: u64,
    /// Used ring ("device area").
    pub used: u64,
}

/// One virtio-mmio register window.
pub struct Transport {
    base: u64,
    irq_port: u32,
    /// The status bits this driver has set (the device refuses a write
    /// that clears bits without a reset, so every write carries them all).
    status: u32,
    offered: u64,
    features: u64,
    accesses: u64,
}

impl Transport {
    /// Checks that `dev`'s window holds a version-2 virtio device of type
    /// `device_id`.
    pub fn probe(dev: &GuestDevice, device_id: u32) -> Result<Self, TransportError> {
        let mut t = Self {
            base: dev.mmio_base,
            irq_port: dev.irq_port,
            status: 0,
            offered: 0,
            features: 0,
            accesses: 0,
        };
        let magic = t.read(reg::MAGIC_VALUE);
        if magic != reg::MAGIC {
            return Err(TransportError::BadMagic(magic));
        }
        let version = t.read(reg::VERSION);
        if version != reg::VERSION_2 {
            return Err(TransportError::BadVersion(version));
        }
        let id = t.read(reg::DEVICE_ID);
        if id != device_id {
            return Err(TransportError::WrongDevice(id));
        }
        Ok(t)
    }

    /// The event-channel port the device interrupts on.
    pub fn irq_port(&self) -> u32 {
        self.irq_port
    }

    /// Features the device offered at the last negotiation.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Features agreed at the last negotiation.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// True if feature bit `bit` was agreed.
    pub fn has(&self, bit: u32) -> bool {
        self.features & feature(bit) != 0
    }

    /// Register accesses made so far (each one an exit to the core and an
    /// ioreq to Domain-0; `QueueNotify` writes are not counted).
    pub fn accesses(&self) -> u64 {
        self.accesses
    }

    fn read(&mut self, offset: u64) -> u32 {
        self.accesses += 1;
        // SAFETY: `base` is the device's register window in the MMIO hole,
        // identity-mapped and user-accessible; the load has no effect on
        // this guest's memory.
        unsafe { ((self.base + offset) as *const u32).read_volatile() }
    }

    fn write(&mut self, offset: u64, value: u32) {
        self.accesses += 1;
        // SAFETY: as for `read`: a store to the device's register window.
        unsafe { ((self.base + offset) as *mut u32).write_volatile(value) };
    }

    /// Address of the `QueueNotify` register, for the queues' doorbells.
    pub fn notify_addr(&self) -> u64 {
        self.base + reg::QUEUE_NOTIFY
    }

    /// Reads the device status register.
    pub fn status(&mut self) -> u32 {
        self.read(reg::STATUS)
    }

    /// Reads the status and fails if the device set DEVICE_NEEDS_RESET.
    pub fn check(&mut self) -> Result<u32, TransportError> {
        let status = self.status();
        if status & reg::STATUS_DEVICE_NEEDS_RESET != 0 {
            return Err(TransportError::NeedsReset(status));
        }
        Ok(status)
    }

    /// Resets the device (writes 0 to the status register) and waits for
    /// the reset to take effect (the status reads back 0).
    pub fn reset(&mut self) {
        self.write(reg::STATUS, 0);
        self.status = 0;
        // The device model resets synchronously; one read confirms it.
        let _ = self.read(reg::STATUS);
    }

    fn set_status(&mut self, bits: u32) {
        self.status |= bits;
        let status = self.status;
        self.write(reg::STATUS, status);
    }

    /// Tells the device the driver gave up on it (status FAILED).
    pub fn fail(&mut self) {
        self.set_status(reg::STATUS_FAILED);
    }

    /// Reset, ACKNOWLEDGE, DRIVER and feature negotiation: accepts the
    /// offered features among `wanted`, fails unless every bit of
    /// `required` (plus VERSION_1) is offered, sets FEATURES_OK and checks
    /// that it stuck. Returns the agreed features.
    pub fn negotiate(&mut self, wanted: u64, required: u64) -> Result<u64, TransportError> {
        self.reset();
        self.set_status(reg::STATUS_ACKNOWLEDGE);
        self.set_status(reg::STATUS_DRIVER);
        let mut offered = 0u64;
        for sel in 0..2u32 {
            self.write(reg::DEVICE_FEATURES_SEL, sel);
            offered |= u64::from(self.read(reg::DEVICE_FEATURES)) << (32 * sel);
        }
        self.offered = offered;
        let required = required | feature(VIRTIO_F_VERSION_1);
        if offered & required != required {
            self.fail();
            return Err(TransportError::MissingFeatures(required & !offered));
        }
        let agreed = offered & (wanted | required);
        for sel in 0..2u32 {
            self.write(reg::DRIVER_FEATURES_SEL, sel);
            self.write(reg::DRIVER_FEATURES, (agreed >> (32 * sel)) as u32);
        }
        self.set_status(reg::STATUS_FEATURES_OK);
        if self.status() & reg::STATUS_FEATURES_OK == 0 {
            self.fail();
            return Err(TransportError::FeaturesRefused);
        }
        self.features = agreed;
        Ok(agreed)
    }

    /// The size to use for queue `index`: the largest power of two no
    /// bigger than both `QueueNumMax` and `wanted`.
    pub fn queue_size(&mut self, index: u16, wanted: u16) -> Result<u16, TransportError> {
        self.write(reg::QUEUE_SEL, u32::from(index));
        let max = self.read(reg::QUEUE_NUM_MAX).min(u32::from(wanted.max(1)));
        if max == 0 {
            return Err(TransportError::NoQueue(index));
        }
        // Largest power of two <= max (max >= 1 and fits in u16 here).
        let size = 1u16 << (31 - max.leading_zeros());
        debug_assert!(is_valid_size(size));
        Ok(size)
    }

    /// Programs queue `index` (size and ring addresses) and makes it ready.
    pub fn setup_queue(&mut self, index: u16, size: u16, addrs: QueueAddrs) {
        self.write(reg::QUEUE_SEL, u32::from(index));
        self.write(reg::QUEUE_NUM, u32::from(size));
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, addrs.desc),
            (reg::QUEUE_AVAIL_LOW, addrs.avail),
            (reg::QUEUE_USED_LOW, addrs.used),
        ] {
            self.write(low, addr as u32);
            self.write(low + 4, (addr >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 1);
    }

    /// Sets DRIVER_OK and checks the device is live.
    pub fn driver_ok(&mut self) -> Result<(), TransportError> {
        self.set_status(reg::STATUS_DRIVER_OK);
        let status = self.check()?;
        if status & reg::STATUS_DRIVER_OK == 0 {
            return Err(TransportError::NotLive(status));
        }
        Ok(())
    }

    /// Reads a 32-bit configuration field at `offset` in the device's
    /// configuration space.
    pub fn config_u32(&mut self, offset: u64) -> u32 {
        self.read(reg::CONFIG + offset)
    }

    /// Reads a 64-bit configuration field as two 32-bit halves, retrying
    /// until the configuration generation is the same before and after.
    pub fn config_u64(&mut self, offset: u64) -> u64 {
        let mut value = 0;
        for _ in 0..4 {
            let before = self.read(reg::CONFIG_GENERATION);
            let low = self.config_u32(offset);
            let high = self.config_u32(offset + 4);
            value = u64::from(low) | (u64::from(high) << 32);
            if self.read(reg::CONFIG_GENERATION) == before {
                break;
            }
        }
        value
    }
}
