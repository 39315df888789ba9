//! Device setup, for both placements: what a guest's disk or console
//! needs from the core, from Domain-0's hardware queues, or from the host
//! model. The core offers seams (an MMIO range with a handler, eventfds
//! wired as ports or MMIO writes, foreign windows, ioreq servers, reserved
//! pages); this module builds devices from them:
//!
//! * every device gets a virtio-mmio register window in the guest
//!   ([`window`]), whose QueueNotify register is an ioeventfd, and a port
//!   on which its interrupts arrive; the guest finds it in the device
//!   table of its shared page ([`table`]);
//! * [`service_vm`]: the backends run in Domain-0 (the hybrid model). The
//!   window's accesses go to an ioreq server, its notify eventfd and the
//!   interrupt port are wired to Dom0's ports, Dom0 gets a foreign window
//!   onto the guest and a hardware queue per disk, and hears of it all on
//!   its backend ring ([`backend_ring`]);
//! * [`host_model`]: the backends run in this process (the host model),
//!   a `host-model` device answering the window's accesses itself.
//!
//! Disk images are opened here, once, for either placement ([`image`]).

pub(crate) mod backend_ring;
pub(crate) mod claims;
mod dom0_queue;
mod doorbells;
pub use doorbells::{Dom0Doorbells, DoorbellMode};
mod host_model;
mod image;
mod service_vm;
pub(crate) mod set;
pub(crate) mod table;
pub mod tap;
pub(crate) mod uplink;
mod window;

use std::path::PathBuf;

/// A device to give a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Virtual device name (`xvda`, `console`).
    pub vdev: String,
    /// What backs it.
    pub backing: Backing,
}

impl DeviceConfig {
    /// A raw disk image at `path` seen by the guest as `vdev`.
    pub fn disk(vdev: &str, path: impl Into<PathBuf>, readonly: bool) -> Self {
        Self {
            vdev: vdev.into(),
            backing: Backing::Disk {
                path: path.into(),
                readonly,
                direct: false,
            },
        }
    }

    /// The same device, its image read and written past the host's page
    /// cache (`O_DIRECT`: Xen's `direct-io-safe`, QEMU's `cache=none`) if
    /// `direct`, so the device, not the page cache, sets the time. Only a
    /// disk has an image; any other device is returned as it is.
    pub fn with_direct_io(mut self, direct: bool) -> Self {
        if let Backing::Disk { direct: d, .. } = &mut self.backing {
            *d = direct;
        }
        self
    }

    /// The guest's virtio console.
    pub fn console() -> Self {
        Self {
            vdev: "console".into(),
            backing: Backing::Console,
        }
    }

    /// A vif, seen by the guest as `eth<devid>`.
    pub fn net(net: NetBacking) -> Self {
        Self {
            vdev: format!("eth{}", net.devid),
            backing: Backing::Net(net),
        }
    }

    /// A guest's standard device list: one disk as `xvda` and a console.
    pub fn disk_and_console(path: impl Into<PathBuf>, readonly: bool) -> Vec<Self> {
        vec![Self::disk("xvda", path, readonly), Self::console()]
    }
}

/// What backs a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A raw disk image on the host.
    Disk {
        /// Path of the image.
        path: PathBuf,
        /// The guest may not write.
        readonly: bool,
        /// The image is opened for direct I/O ([`DeviceConfig::with_direct_io`]).
        direct: bool,
    },
    /// A console whose output reaches the guest's console log.
    Console,
    /// A network interface (a vif) on a host bridge.
    Net(NetBacking),
}

impl Backing {
    /// The device kind the guest sees (`protocol::device::kind`).
    pub fn kind(&self) -> u32 {
        match self {
            Self::Disk { .. } => protocol::device::kind::BLOCK,
            Self::Console => protocol::device::kind::CONSOLE,
            Self::Net(_) => protocol::device::kind::NET,
        }
    }
}

/// A vif: what its port on the bridge is, and what the guest is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetBacking {
    /// The device id (`xl network-list`'s Idx); the guest sees `eth<devid>`.
    pub devid: u32,
    /// The guest's MAC address: frames from another source are dropped.
    pub mac: [u8; 6],
    /// The Linux bridge the vif joins.
    pub bridge: String,
    /// The host-side interface's name, for the host model's tap
    /// (`vif<domid>.<devid>` unless `vifname=` gave one).
    pub vifname: Option<String>,
    /// The address the guest takes (`None`: [`NetBacking::default_ip`]).
    pub guest_ip: Option<protocol::device::Ipv4Cidr>,
    /// `ip=`: the sources the vif may use (none: any).
    pub allowed_ip: Option<protocol::device::Ipv4Cidr>,
    /// `rate=`: bytes per interval and the interval in microseconds.
    pub rate: Option<(u32, u32)>,
}

impl NetBacking {
    /// The address a guest takes on a vif without `ip=`: link-local
    /// (RFC 3927, what a host without DHCP picks), `169.254.(1 +
    /// domid / 256).(domid % 256)/16`, distinct for every domain.
    pub fn default_ip(domid: protocol::domain::DomId) -> protocol::device::Ipv4Cidr {
        protocol::device::Ipv4Cidr {
            addr: [169, 254, 1 + (domid >> 8) as u8, domid as u8],
            prefix_len: 16,
            _pad: [0; 3],
        }
    }

    /// What the vif's switch port needs: its MAC and limits, and which
    /// of Domain-0's switches it joins (0 in the host model, whose vifs
    /// each have a switch of their own).
    pub fn params(&self, switch: u16) -> protocol::device::NetParams {
        let (rate_bytes, rate_interval_us) = self.rate.unwrap_or((0, 0));
        protocol::device::NetParams {
            mac: self.mac,
            switch,
            ip: self.allowed_ip.unwrap_or_default(),
            rate_bytes,
            rate_interval_us,
        }
    }

    /// The address the guest `domid` takes on this vif.
    pub fn address_of(&self, domid: protocol::domain::DomId) -> protocol::device::Ipv4Cidr {
        self.guest_ip.unwrap_or_else(|| Self::default_ip(domid))
    }
}

/// Where a domain's device backends run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// In Domain-0, the service VM (the hybrid model; xl.cfg
    /// `backend_placement = "service-vm"`).
    #[default]
    ServiceVm,
    /// In this process, as QEMU/KVM do (the host model; xl.cfg
    /// `backend_placement = "host"`).
    Host,
}

impl Placement {
    /// The name xl.cfg and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceVm => "service-vm",
            Self::Host => "host",
        }
    }
}

/// What can go wrong giving a guest a device, or taking it away.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The disk image cannot be used.
    #[error("disk {0}")]
    Image(#[from] crate::files::FileError),
    /// Another guest holds the image, and one of the two would write it.
    #[error("disk {path} is in use {} by domain {name} ({domid})", if *writable { "read-write" } else { "read-only" })]
    ImageInUse {
        /// The image.
        path: PathBuf,
        /// The domain holding it.
        domid: protocol::domain::DomId,
        /// That domain's name.
        name: String,
        /// It holds it read-write.
        writable: bool,
    },
    /// Another process (another `hypd`?) holds a conflicting lock on it.
    #[error("disk {0} is locked by another process (another hypd?)")]
    ImageLocked(PathBuf),
    /// The device's name is not one a guest can be given.
    #[error("vdev {0:?} is not a Xen virtual disk name (xvda, xvdb1, hdc, sda, d0p1)")]
    BadVdev(String),
    /// The guest has a device of this name already.
    #[error("the guest already has a device {0}")]
    Duplicate(String),
    /// The guest has no device of this name.
    #[error("no device {0}")]
    NoSuchDevice(String),
    /// Every register window of the guest is taken.
    #[error("at most {} devices", protocol::device::MAX_DEVICES)]
    TooMany,
    /// The guest is too large for a foreign window.
    #[error("a guest with devices served by Domain-0 may have at most {} MiB", protocol::device::MAX_WINDOW_BYTES >> 20)]
    GuestTooLarge,
    /// Domain-0 left its backend ring full.
    #[error("Domain-0 does not consume its backend ring: the device was not announced")]
    Dom0Unresponsive,
    /// Domain-0 must run for its placement's devices.
    #[error("Domain-0 is not running to serve devices")]
    NoDom0,
    /// Devices belong to running guests.
    #[error("domain {0} is not a running guest")]
    NotAGuest(protocol::domain::DomId),
    /// A hardware queue could not be made.
    #[error(transparent)]
    HwQueue(#[from] hwqueue::HwQueueError),
    /// A host-model device could not be started.
    #[error(transparent)]
    HostModel(#[from] ::host_model::HostModelError),
    /// The core refused a step.
    #[error(transparent)]
    Core(#[from] hyp::Error),
    /// Domain-0 serves this many bridges already.
    #[error("Domain-0 serves at most {0} bridges")]
    TooManyBridges(usize),
    /// A vif's tap or bridge could not be set up.
    #[error("vif: {0}")]
    Tap(#[from] tap::TapError),
    /// A host resource (an eventfd) could not be had.
    #[error("host: {0}")]
    Host(#[from] std::io::Error),
}
