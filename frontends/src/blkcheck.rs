//! Checks of a block device's refusals, each a [`protocol::report::Report::Check`]
//! whose value is the status byte the device answered (-1 if the request
//! did not complete at all):
//!
//! * `workload=readonly`: the device offers `VIRTIO_BLK_F_RO`, a write
//!   completes with `S_IOERR`, reads still work;
//! * `workload=outofrange`: reads and writes that start past the end of
//!   the disk, straddle it, or whose byte offset overflows complete with
//!   `S_IOERR`, and the device still works afterwards.

use protocol::domain::ShutdownReason;
use protocol::virtio::blk::{S_IOERR, S_OK, VIRTIO_BLK_F_RO};
use protocol::virtio::feature;
use protocol::virtio::mmio::{STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK};

use crate::cmdline::Args;
use crate::disk;
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::outln;
use crate::virtio::blk::TIMEOUT_NS;
use crate::virtio::blk::{Blk, BlkError, Completion};

/// Bytes per test request.
const BLOCK: u32 = 4096;

/// Turns a request's outcome into a check expecting status `want`.
fn expect(out: &mut Out, blk: &mut Blk, name: &str, done: Result<Completion, BlkError>, want: u8) {
    match done {
        Ok(c) => out.check(
            name,
            c.status == want,
            i64::from(c.status),
            format_args!("status {}, expected {want}", c.status),
        ),
        Err(e) => {
            out.check(name, false, -1, format_args!("{e}"));
            // Start afresh for the next check.
            if let Err(e) = blk.reinit() {
                outln!(out, "device lost: {e}");
            }
        }
    }
}

/// Checks the device is still live (no DEVICE_NEEDS_RESET).
fn still_live(out: &mut Out, blk: &mut Blk, name: &str) {
    let status = blk.transport().status();
    let live = status & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET) == STATUS_DRIVER_OK;
    out.check(
        name,
        live,
        i64::from(status),
        format_args!("device status {status:#x}"),
    );
}

fn buffer(out: Out) -> (DmaBuf, Out) {
    match DmaBuf::new(2 * BLOCK as usize) {
        Ok(buf) => (buf, out),
        Err(_) => out.finish(ShutdownReason::Crash, b"out of memory"),
    }
}

/// `workload=readonly`.
pub fn readonly(args: &Args) -> ! {
    let (mut blk, out) = disk::open(args, Out::open());
    let (mut buf, mut out) = buffer(out);
    disk::describe(&mut out, &mut blk);
    let offered = blk.transport().offered();
    let ro = offered & feature(VIRTIO_BLK_F_RO) != 0;
    out.check(
        "ro-feature-offered",
        ro,
        i64::from(ro),
        format_args!(
            "VIRTIO_BLK_F_RO {}",
            if ro { "offered" } else { "not offered" }
        ),
    );
    buf.bytes_mut().fill(0xEE);
    let done = blk.write(0, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "ro-write-refused", done, S_IOERR);
    let done = blk.read(0, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "ro-read-works", done, S_OK);
    let last = blk.info().capacity.saturating_sub(u64::from(BLOCK / 512));
    let done = blk.read(last, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "ro-read-last-block", done, S_OK);
    still_live(&mut out, &mut blk, "ro-device-live");
    out.finish(ShutdownReason::Poweroff, b"")
}

/// `workload=outofrange`.
pub fn outofrange(args: &Args) -> ! {
    let (mut blk, out) = disk::open(args, Out::open());
    let (mut buf, mut out) = buffer(out);
    disk::describe(&mut out, &mut blk);
    let cap = blk.info().capacity;
    let per_block = u64::from(BLOCK / 512);
    let straddle = cap.saturating_sub(per_block);

    let done = blk.read(cap, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "oor-read-past-end", done, S_IOERR);
    let done = blk.write(cap, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "oor-write-past-end", done, S_IOERR);
    let done = blk.read(cap.saturating_add(1000), &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "oor-read-far-past-end", done, S_IOERR);
    let done = blk.read(straddle, &mut buf, 0, 2 * BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "oor-read-straddling-end", done, S_IOERR);
    let done = blk.write(straddle, &mut buf, 0, 2 * BLOCK, TIMEOUT_NS);
    expect(
        &mut out,
        &mut blk,
        "oor-write-straddling-end",
        done,
        S_IOERR,
    );
    // sector * 512 overflows 64 bits.
    let done = blk.read(u64::MAX / 512 + 1, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "oor-offset-overflow", done, S_IOERR);

    let done = blk.read(straddle, &mut buf, 0, BLOCK, TIMEOUT_NS);
    expect(&mut out, &mut blk, "oor-read-last-block-works", done, S_OK);
    still_live(&mut out, &mut blk, "oor-device-live");
    out.finish(ShutdownReason::Poweroff, b"")
}
