//! `workload=hostile`: a guest that attacks its block device's ring
//! ([`attacks`]); `workload=nethostile` does the same to its network
//! device ([`net`]); `workload=tracehostile` garbles its own trace ring
//! while it reads ([`trace`]). Both write the rings with the helpers of [`ring`].
//!
//! Each attack runs on a freshly reset device: the driver resets it
//! (status 0), brings it up again, writes a malformed request straight
//! into the rings, rings the doorbell and waits (at most a second) for the
//! device's interrupt. It then reads the status register:
//!
//! * attacks on the ring rules (addresses outside RAM, loops, overlong
//!   chains, bad indirect tables, a runaway available index, a head out of
//!   range) must leave the device in DEVICE_NEEDS_RESET;
//! * malformed requests (a short header, a status the device cannot
//!   write) may instead complete with an error status, or with nothing
//!   written at all when there is no writable byte for a status.
//!
//! Then the driver resets the device again and does one valid read to show
//! that it recovered. Each attack is one `Report::Check`: `passed` when the
//! device refused it as expected and recovered; `value` is the status
//! register read after the attack.

use guest_runtime::{control, time, BootInfo};
use protocol::domain::ShutdownReason;
use protocol::virtio::blk::{RequestHeader, S_OK};

use crate::cmdline::Args;
use crate::disk;
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::virtio::blk::Blk;
use crate::virtio::blk::TIMEOUT_NS;

mod attacks;
pub mod net;
mod ring;
pub mod trace;

use attacks::{refused, Attack, ATTACKS, DATA, HDR, SCRATCH_BYTES, STATUS, UNSET};
use ring::{forget_interrupts, recovery, wait_reaction, Ctx, Reaction};

/// Runs the workload.
pub fn run(boot: &BootInfo, args: &Args) -> ! {
    let (mut blk, mut out) = disk::open(args, Out::open());
    let Ok(mut scratch) = DmaBuf::new(SCRATCH_BYTES) else {
        out.finish(ShutdownReason::Crash, b"out of memory")
    };
    disk::describe(&mut out, &mut blk);
    let baseline = blk.read(0, &mut scratch, DATA, 4096, TIMEOUT_NS);
    let ok = baseline.is_ok_and(|c| c.ok());
    out.check(
        "hostile-baseline-read",
        ok,
        baseline.map_or(-1, |c| i64::from(c.status)),
        format_args!("a valid read before any attack"),
    );
    // `count=N` runs the attacks N times (a Domain-0 restart test keeps
    // the guest attacking throughout).
    for _ in 0..args.count.unwrap_or(1).max(1) {
        for attack in ATTACKS {
            run_attack(&mut out, &mut blk, &mut scratch, boot.ram_bytes, attack);
            control::set_progress(time::rdtsc());
        }
    }
    out.finish(ShutdownReason::Poweroff, b"")
}

/// Runs one attack on a freshly reset device and reports whether it was
/// refused and the device recovered. Long because it is one experiment:
/// set up, attack, observe, recover, in that order.
fn run_attack(out: &mut Out, blk: &mut Blk, scratch: &mut DmaBuf, ram_bytes: u64, attack: &Attack) {
    if let Err(e) = blk.reinit() {
        out.check(
            attack.name,
            false,
            -1,
            format_args!("device did not come up: {e}"),
        );
        return;
    }
    forget_interrupts();
    scratch.zero();
    let header = RequestHeader {
        kind: attack.kind,
        reserved: 0,
        sector: 0,
    };
    scratch.bytes_mut()[HDR..HDR + 16].copy_from_slice(&header.to_bytes());
    scratch.bytes_mut()[STATUS] = UNSET;
    let port = blk.transport().irq_port();
    let size = blk.queue().size();
    {
        let mut ctx = Ctx {
            raw: blk.queue().raw(),
            scratch,
            size,
            ram_bytes,
        };
        (attack.build)(&mut ctx);
        ctx.launch();
    }
    let interrupted = wait_reaction(port, || blk.queue().raw().used_idx() != 0);
    let status = blk.transport().status();
    let reaction = Reaction::observe(status, &blk.queue().raw(), interrupted);
    let status_byte = scratch.bytes()[STATUS];
    let what = reaction.describe(|| {
        alloc::format!(
            "completed with status byte {status_byte:#x}, used length {}",
            reaction.used_len
        )
    });
    let recovered = blk.reinit().is_ok()
        && blk
            .read(0, scratch, DATA, 4096, TIMEOUT_NS)
            .is_ok_and(|c| c.status == S_OK);
    out.check(
        attack.name,
        refused(attack.expect, &reaction, status_byte) && recovered,
        i64::from(status),
        format_args!("{what}; {}", recovery(recovered)),
    );
}
