//! A descriptor chain copied out of the ring: the list of buffers one
//! request spans, already validated, plus helpers to move bytes in and out
//! of it as if it were two flat byte ranges (the device-readable part
//! followed by the device-writable part).

use alloc::vec::Vec;

use crate::platform::{GuestBuf, MemError, Platform};

/// One buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Guest-physical address (checked to lie in the frontend's RAM).
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// True if the device may write it (`DESC_F_WRITE`).
    pub writable: bool,
}

/// A validated descriptor chain. Every device-readable buffer comes before
/// every device-writable one (the queue refuses other orders), so the
/// chain is a readable byte range followed by a writable byte range.
#[derive(Debug, Default)]
pub struct Chain {
    head: u16,
    bufs: Vec<Buffer>,
    first_writable: usize,
    readable_len: u64,
    writable_len: u64,
}

impl Chain {
    /// An empty chain, to be filled by [`crate::queue::Queue::pop`]. Reuse
    /// it from request to request to avoid allocating.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn clear(&mut self, head: u16) {
        self.head = head;
        self.bufs.clear();
        self.first_writable = 0;
        self.readable_len = 0;
        self.writable_len = 0;
    }

    /// Appends a buffer; the caller has checked the ordering rule.
    pub(crate) fn push(&mut self, buf: Buffer) {
        if buf.writable {
            self.writable_len += u64::from(buf.len);
        } else {
            self.readable_len += u64::from(buf.len);
            self.first_writable = self.bufs.len() + 1;
        }
        self.bufs.push(buf);
    }

    /// True once the chain holds a device-writable buffer.
    pub(crate) fn has_writable(&self) -> bool {
        self.first_writable < self.bufs.len()
    }

    /// Index of the chain's head descriptor: the id to return in the used
    /// ring.
    pub fn head(&self) -> u16 {
        self.head
    }

    /// Every buffer, in chain order.
    pub fn buffers(&self) -> &[Buffer] {
        &self.bufs
    }

    /// The device-readable buffers.
    pub fn readable(&self) -> &[Buffer] {
        &self.bufs[..self.first_writable]
    }

    /// The device-writable buffers.
    pub fn writable(&self) -> &[Buffer] {
        &self.bufs[self.first_writable..]
    }

    /// Total bytes of the device-readable buffers.
    pub fn readable_len(&self) -> u64 {
        self.readable_len
    }

    /// Total bytes of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.writable_len
    }

    /// Copies `out.len()` bytes of the readable range, from byte `offset`.
    pub fn read_readable<P: Platform>(
        &self,
        p: &P,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), MemError> {
        let mut done = 0usize;
        for_each_piece(
            pieces(self.readable()),
            offset,
            out.len() as u64,
            |gpa, len| {
                let end = done + len as usize;
                p.read(gpa, &mut out[done..end])?;
                done = end;
                Ok(())
            },
        )
    }

    /// Copies `data` into the writable range, from byte `offset`.
    pub fn write_writable<P: Platform>(
        &self,
        p: &mut P,
        offset: u64,
        data: &[u8],
    ) -> Result<(), MemError> {
        let mut done = 0usize;
        for_each_piece(
            pieces(self.writable()),
            offset,
            data.len() as u64,
            |gpa, len| {
                let end = done + len as usize;
                p.write(gpa, &data[done..end])?;
                done = end;
                Ok(())
            },
        )
    }

    /// Guest-physical address of byte `offset` of the writable range.
    pub fn writable_addr(&self, offset: u64) -> Option<u64> {
        let mut addr = None;
        for_each_piece(pieces(self.writable()), offset, 1, |gpa, _| {
            addr = Some(gpa);
            Ok(())
        })
        .ok()?;
        addr
    }

    /// Appends to `out` the pieces of the readable range
    /// `[offset, offset + len)`.
    pub fn readable_segments(&self, offset: u64, len: u64, out: &mut Vec<GuestBuf>) -> bool {
        segments(self.readable(), offset, len, out)
    }

    /// Appends to `out` the pieces of the writable range
    /// `[offset, offset + len)`.
    pub fn writable_segments(&self, offset: u64, len: u64, out: &mut Vec<GuestBuf>) -> bool {
        segments(self.writable(), offset, len, out)
    }
}

fn segments(bufs: &[Buffer], offset: u64, len: u64, out: &mut Vec<GuestBuf>) -> bool {
    for_each_piece(pieces(bufs), offset, len, |gpa, len| {
        out.push(GuestBuf { gpa, len });
        Ok(())
    })
    .is_ok()
}

/// The buffers as `(address, length)` pieces.
fn pieces(bufs: &[Buffer]) -> impl Iterator<Item = (u64, u32)> + '_ {
    bufs.iter().map(|b| (b.addr, b.len))
}

/// Calls `f(gpa, len)` for each piece of `[offset, offset + len)` of the
/// byte range that the `(address, length)` pieces `bufs` form, in order.
/// Fails (with the range asked) if they are too short.
pub(crate) fn for_each_piece(
    bufs: impl IntoIterator<Item = (u64, u32)>,
    mut offset: u64,
    len: u64,
    mut f: impl FnMut(u64, u32) -> Result<(), MemError>,
) -> Result<(), MemError> {
    let mut left = len;
    for (addr, blen) in bufs {
        if left == 0 {
            break;
        }
        let blen = u64::from(blen);
        if offset >= blen {
            offset -= blen;
            continue;
        }
        let take = (blen - offset).min(left);
        // `take <= blen`, so it fits in a u32; every buffer's end was
        // checked against the frontend's RAM, so the sum cannot overflow.
        f(addr + offset, take as u32)?;
        left -= take;
        offset = 0;
    }
    if left == 0 {
        Ok(())
    } else {
        Err(MemError { gpa: 0, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        let mut c = Chain::new();
        c.clear(3);
        c.push(Buffer {
            addr: 0x1000,
            len: 10,
            writable: false,
        });
        c.push(Buffer {
            addr: 0x2000,
            len: 6,
            writable: false,
        });
        c.push(Buffer {
            addr: 0x3000,
            len: 4,
            writable: true,
        });
        c.push(Buffer {
            addr: 0x4000,
            len: 1,
            writable: true,
        });
        c
    }

    #[test]
    fn splits_readable_and_writable() {
        let c = chain();
        assert_eq!(c.head(), 3);
        assert_eq!(c.readable().len(), 2);
        assert_eq!(c.writable().len(), 2);
        assert_eq!((c.readable_len(), c.writable_len()), (16, 5));
        assert_eq!(c.writable_addr(4), Some(0x4000));
        assert_eq!(c.writable_addr(5), None);
    }

    #[test]
    fn segments_cross_buffer_boundaries() {
        let c = chain();
        let mut out = Vec::new();
        assert!(c.readable_segments(8, 8, &mut out));
        assert_eq!(
            out,
            [
                GuestBuf {
                    gpa: 0x1008,
                    len: 2
                },
                GuestBuf {
                    gpa: 0x2000,
                    len: 6
                }
            ]
        );
        out.clear();
        assert!(!c.readable_segments(8, 9, &mut out), "past the end");
        out.clear();
        assert!(c.writable_segments(0, 0, &mut out) && out.is_empty());
    }
}
