//! Messages between `xl` and the `hypd` daemon.
//!
//! Each message is a frame: a 4-byte little-endian length, then that many
//! bytes of a postcard-encoded [`Envelope`]. Frames longer than
//! [`MAX_FRAME`] are refused unread, and an envelope of another
//! [`VERSION`] is answered with an error, so old and new tools fail
//! clearly instead of misreading each other.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::domain::DomId;

/// Version of this message set; bump on any incompatible change.
pub const VERSION: u32 = 6;

/// Largest frame either side accepts, in bytes.
pub const MAX_FRAME: usize = 1 << 20;

/// The outer layer of every message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// [`VERSION`] of the sender.
    pub version: u32,
    /// The message.
    pub body: T,
}

/// How a command names a domain: by id or by name (as `xl` accepts both).
pub type DomRef = String;

/// What to do when a domain powers off, reboots or crashes (xl.cfg's
/// `on_poweroff`, `on_reboot`, `on_crash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Destroy the domain.
    Destroy,
    /// Destroy it and create it again from its configuration.
    Restart,
    /// Keep it, stopped, until `xl destroy`.
    Preserve,
    /// Keep it under a new name and start a fresh one.
    RenameRestart,
}

/// A disk to attach, as parsed from a disk spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRequest {
    /// Path of the raw image on the host.
    pub target: String,
    /// Virtual device name (`xvda`).
    pub vdev: String,
    /// Read-only.
    pub readonly: bool,
    /// Xen's `direct-io-safe`: the image is read and written with
    /// `O_DIRECT`, past the host's page cache (QEMU's `cache=none`).
    pub direct_io: bool,
}

/// A network interface to give a guest, as parsed from a vif spec, with
/// the toolstack's defaults filled in (as libxl fills them in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifRequest {
    /// The device id (`xl network-list`'s Idx); `None`: the next free one.
    pub devid: Option<u32>,
    /// The guest's MAC address.
    pub mac: [u8; 6],
    /// The host bridge it joins.
    pub bridge: String,
    /// The host model's tap name (`None`: `vif<domid>.<devid>`).
    pub vifname: Option<String>,
    /// `ip=`'s first IPv4 address and its prefix length, if given.
    pub ip: Option<([u8; 4], Option<u8>)>,
    /// `rate=`: bytes per interval and the interval in microseconds.
    pub rate: Option<(u32, u32)>,
}

/// One vif, as `xl network-list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VifRecord {
    /// The device id.
    pub devid: u32,
    /// The backend domain (0: Domain-0 serves it; the host model's vifs
    /// too are listed as 0, the domain of the toolstack, as in Xen).
    pub backend: DomId,
    /// The guest's MAC address.
    pub mac: [u8; 6],
    /// The guest's port for the device's interrupts.
    pub irq_port: u32,
    /// The bridge.
    pub bridge: String,
    /// The address the guest took, `a.b.c.d/n`.
    pub ip: String,
    /// Where the backend runs (`service-vm` or `host`), and for the host
    /// model its tap's name.
    pub placement: String,
}

/// Everything `hypd` needs to create a domain (from an xl.cfg file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Domain name.
    pub name: String,
    /// Absolute path of the kernel on the host.
    pub kernel: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u8,
    /// Kernel command line.
    pub cmdline: String,
    /// Leave it paused (`xl create -p`).
    pub paused: bool,
    /// `on_poweroff`.
    pub on_poweroff: Action,
    /// `on_reboot`.
    pub on_reboot: Action,
    /// `on_crash`.
    pub on_crash: Action,
    /// Disks.
    pub disks: Vec<DiskRequest>,
    /// Network interfaces.
    pub vifs: Vec<VifRequest>,
    /// Where the device backends run: `true` for the host model.
    pub host_backends: bool,
    /// The parsed configuration as JSON, kept for `xl list -l`.
    pub config_json: String,
}

/// A request from `xl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Create and start a domain.
    Create(CreateRequest),
    /// List domains (all when empty).
    List(Vec<DomRef>),
    /// Destroy at once.
    Destroy(DomRef),
    /// Ask the guest to power off.
    Shutdown(DomRef),
    /// Ask the guest to reboot.
    Reboot(DomRef),
    /// Stop its vCPUs.
    Pause(DomRef),
    /// Resume its vCPUs.
    Unpause(DomRef),
    /// Rename a domain.
    Rename {
        /// The domain.
        domain: DomRef,
        /// Its new name.
        name: String,
    },
    /// Host and core information (`xl info`).
    Info,
    /// The core's message log (`xl dmesg`), optionally cleared after.
    Dmesg {
        /// Clear the log after reading it.
        clear: bool,
    },
    /// Per-vCPU information.
    VcpuList(Vec<DomRef>),
    /// Stream the domain's console. The first reply is [`Response::Ok`]
    /// once the client is following it (nothing the domain prints after that
    /// is missed), then [`Response::Console`] frames, from the recent output
    /// kept by `hypd` on, and [`Response::ConsoleClosed`] when the domain is
    /// gone. The client ends it by hanging up.
    Console(DomRef),
    /// Wait until the domain is gone or stopped (for `xl shutdown -w`).
    Wait(DomRef),
    /// The domain's disks (`xl block-list`).
    BlockList(DomRef),
    /// Give a running guest a disk (`xl block-attach`).
    BlockAttach {
        /// The guest.
        domain: DomRef,
        /// The disk.
        disk: DiskRequest,
    },
    /// Take a disk away from a running guest (`xl block-detach`).
    BlockDetach {
        /// The guest.
        domain: DomRef,
        /// Its virtual device name.
        vdev: String,
    },
    /// The domain's vifs (`xl network-list`).
    NetworkList(DomRef),
    /// Give a running guest a vif (`xl network-attach`).
    NetworkAttach {
        /// The guest.
        domain: DomRef,
        /// The vif.
        vif: VifRequest,
    },
    /// Take a vif away from a running guest (`xl network-detach`).
    NetworkDetach {
        /// The guest.
        domain: DomRef,
        /// Its device id or its MAC address, as the user typed it.
        vif: String,
    },
    /// Trace a running guest's next requests on one device (`xl trace`).
    Trace(TraceRequest),
    /// Send a domain an event from outside (`xl trigger`).
    Trigger {
        /// The domain.
        domain: DomRef,
        /// What to send.
        trigger: Trigger,
    },
}

/// What `xl trigger` sends (Xen's names; the others Xen has, `init`,
/// `power`, `sleep` and `s3resume`, are refused by `xl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// A non-maskable interrupt to vCPU 0: the kernels crash with it, as
    /// Linux does with `panic_on_unrecovered_nmi`.
    Nmi,
    /// A reset: the domain stops at once as crashed, as a triple fault
    /// stops it, and its `on_crash` action follows (Domain-0 restarts).
    Reset,
}

impl Trigger {
    /// The trigger named `name` as `xl trigger` takes it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "nmi" => Some(Self::Nmi),
            "reset" => Some(Self::Reset),
            _ => None,
        }
    }
}

/// What `xl trace` asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// The guest.
    pub domain: DomRef,
    /// Its device (`None`: its first disk).
    pub vdev: Option<String>,
    /// How many requests to record (at most [`TRACE_MAX_REQUESTS`]).
    pub requests: u32,
    /// How long to wait for them, in milliseconds.
    pub timeout_ms: u32,
}

/// Most requests one trace records: what a guest's ring holds at four
/// records a request.
pub const TRACE_MAX_REQUESTS: u32 = 2000;

/// One party's records of a trace session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingDump {
    /// Who wrote them.
    pub party: crate::trace::Party,
    /// The records of the traced device (and the batch steps of its
    /// backend), in the order they were claimed.
    pub records: Vec<crate::trace::Record>,
    /// Records the full ring dropped.
    pub dropped: u32,
    /// Slots claimed but not validly written (a guest's own garbage, or a
    /// record still being written when the session ended).
    pub invalid: u32,
}

/// A trace session's records, as `hypd` collected them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceDump {
    /// The guest.
    pub domid: DomId,
    /// Its name.
    pub name: String,
    /// The traced device's virtual name.
    pub vdev: String,
    /// Its kind (`vbd` or `vif`).
    pub kind: String,
    /// Where its backend runs: `service-vm` or `host`.
    pub placement: String,
    /// The device's window page, as records carry it in `data[0]`.
    pub device: u32,
    /// The TSC's frequency in kHz (one clock for every party).
    pub tsc_khz: u64,
    /// The guest's requests the trace waited for.
    pub requested: u32,
    /// True if the timeout ended the session before that many completed.
    pub timed_out: bool,
    /// True if the guest stopped (powered off, crashed, was destroyed)
    /// during the session, which ended it.
    pub stopped: bool,
    /// Each party's ring.
    pub rings: Vec<RingDump>,
}

/// One disk, as `xl block-list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskRecord {
    /// Virtual device name.
    pub vdev: String,
    /// Device index in the guest.
    pub handle: u32,
    /// The guest's port for the device's interrupts.
    pub irq_port: u32,
    /// Image on the host.
    pub target: String,
    /// Read-only.
    pub readonly: bool,
}

/// One domain, as `xl list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainRecord {
    /// Domain id.
    pub domid: DomId,
    /// Name.
    pub name: String,
    /// UUID, as text.
    pub uuid: String,
    /// Current memory in MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u8,
    /// `running`, `blocked`, `paused`, `shutdown`, `crashed`, `dying`.
    pub state: String,
    /// Shutdown reason code (Xen's numbering) when shut down or crashed.
    pub shutdown_reason: Option<u32>,
    /// CPU seconds used.
    pub cpu_seconds: f64,
    /// Seconds since creation.
    pub uptime_seconds: f64,
    /// The shutdown or crash message.
    pub message: Option<String>,
    /// The configuration as JSON (`null` for Domain-0).
    pub config_json: String,
    /// The network interfaces it has, as `xl network-list` shows them.
    pub vifs: Vec<VifRecord>,
    /// Times the domain was restarted in place (Domain-0 only).
    pub restarts: u32,
    /// Why it last was.
    pub last_restart: Option<String>,
}

/// One vCPU, as `xl vcpu-list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VcpuRecord {
    /// Domain name.
    pub name: String,
    /// Domain id.
    pub domid: DomId,
    /// vCPU index.
    pub vcpu: u8,
    /// Host CPU it last ran on.
    pub cpu: Option<u32>,
    /// `r`, `b` or `p` as Xen prints them (`-b-` ...).
    pub state: String,
    /// CPU seconds.
    pub cpu_seconds: f64,
}

/// A reply from `hypd`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Done.
    Ok,
    /// A domain was created.
    Created(DomId),
    /// Domains.
    Domains(Vec<DomainRecord>),
    /// `key: value` pairs for `xl info`.
    Info(Vec<(String, String)>),
    /// Log lines.
    Dmesg(Vec<String>),
    /// vCPUs.
    Vcpus(Vec<VcpuRecord>),
    /// Disks.
    Disks(Vec<DiskRecord>),
    /// Network interfaces.
    Vifs(Vec<VifRecord>),
    /// Console output bytes (never empty).
    Console(Vec<u8>),
    /// The console's domain is gone: the last frame of a console stream.
    ConsoleClosed,
    /// A trace session's records.
    Trace(TraceDump),
    /// The request failed.
    Error(String),
}

#[cfg(feature = "std")]
pub use io::{read_frame, write_frame, FrameError};

#[cfg(feature = "std")]
mod io {
    use super::{Envelope, MAX_FRAME, VERSION};
    use serde::{de::DeserializeOwned, Serialize};
    use std::io::{Read, Write};
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// Why a frame could not be read.
    #[derive(Debug)]
    pub enum FrameError {
        /// The connection failed or closed.
        Io(std::io::Error),
        /// The length prefix exceeds [`MAX_FRAME`].
        TooLarge(usize),
        /// The bytes are not a valid envelope.
        Malformed(String),
        /// The peer speaks another version.
        Version(u32),
    }

    impl std::fmt::Display for FrameError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Self::Io(e) => write!(f, "connection: {e}"),
                Self::TooLarge(n) => {
                    write!(f, "message of {n} bytes exceeds the limit of {MAX_FRAME}")
                }
                Self::Malformed(e) => write!(f, "malformed message: {e}"),
                Self::Version(v) => {
                    write!(f, "peer speaks protocol version {v}, this side {VERSION}")
                }
            }
        }
    }

    impl std::error::Error for FrameError {}

    /// Writes `body` as one frame.
    pub fn write_frame<T: Serialize>(out: &mut impl Write, body: T) -> std::io::Result<()> {
        let bytes = postcard::to_allocvec(&Envelope {
            version: VERSION,
            body,
        })
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(&bytes)?;
        out.flush()
    }

    /// Reads one frame and decodes its body.
    pub fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> Result<T, FrameError> {
        let mut len = [0u8; 4];
        input.read_exact(&mut len).map_err(FrameError::Io)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        // Read as it comes: a peer that announces a large frame and sends
        // little of it holds no more memory than it sent.
        let mut bytes = Vec::new();
        input
            .take(len as u64)
            .read_to_end(&mut bytes)
            .map_err(FrameError::Io)?;
        if bytes.len() < len {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let version = peek_version(&bytes)?;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let envelope: Envelope<T> =
            postcard::from_bytes(&bytes).map_err(|e| FrameError::Malformed(e.to_string()))?;
        Ok(envelope.body)
    }

    /// The version varint at the start of an envelope.
    fn peek_version(bytes: &[u8]) -> Result<u32, FrameError> {
        postcard::take_from_bytes::<u32>(bytes)
            .map(|(v, _)| v)
            .map_err(|e| FrameError::Malformed(e.to_string()))
    }
}
