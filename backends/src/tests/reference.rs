//! The device-side queue against rust-vmm's virtio-queue: the same chains,
//! built by virtio-queue's mock driver in the same kind of memory, must
//! come out identical, and the used ring, the notification decisions and
//! `avail_event` must match byte for byte.

use std::vec::Vec;

use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use virtio_queue::mock::{DescriptorTable, MockSplitQueue};
use virtio_queue::{Queue as VqQueue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use protocol::virtio::queue::{avail_event_offset, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

use super::{Rng, TestPlatform};
use crate::chain::Chain;
use crate::queue::Queue;

/// One chain as a list of (addr, len, writable).
type Flat = Vec<(u64, u32, bool)>;

/// What the scenario put in the queue, to build it twice identically.
fn populate(mem: &GuestMemoryMmap, size: u16, seed: u64) -> MockSplitQueue<'_, GuestMemoryMmap> {
    let mut rng = Rng::new(seed);
    let mock = MockSplitQueue::new(mem, size);
    // Sequential chains written by the mock (its `add_desc_chains` links
    // descriptor i to i + 1 and publishes each head).
    let mut descs = Vec::new();
    let mut used = 0u16;
    while used + 8 < size / 2 {
        let len = rng.range(1, 6) as u16;
        let writable_from = rng.range(0, u64::from(len) + 1) as u16;
        for i in 0..len {
            let idx = used + i;
            let last = i + 1 == len;
            let flags = if i >= writable_from { DESC_F_WRITE } else { 0 }
                | if last { 0 } else { DESC_F_NEXT };
            let addr = 0x10_0000 + rng.range(0, 0x8000) * 16;
            let blen = rng.range(1, 0x2000) as u32;
            descs.push(RawDescriptor::from(SplitDescriptor::new(
                addr,
                blen,
                flags,
                if last { 0 } else { idx + 1 },
            )));
        }
        used += len;
    }
    mock.add_desc_chains(&descs, 0).expect("mock chains");
    // Chains in scattered descriptors, linked out of order, written to the
    // mock's table; the last three descriptors head indirect tables built
    // with the mock's `DescriptorTable`. Heads are published by hand.
    let mut free: Vec<u16> = (size / 2..size - 3).collect();
    for i in (1..free.len()).rev() {
        free.swap(i, rng.range(0, i as u64 + 1) as usize);
    }
    let mut heads = Vec::new();
    while free.len() > 4 {
        let len = rng.range(1, 5) as usize;
        let idxs: Vec<u16> = free.drain(..len).collect();
        for (i, &idx) in idxs.iter().enumerate() {
            let last = i + 1 == idxs.len();
            let write = last && rng.next().is_multiple_of(2);
            let flags = if write { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT };
            let addr = 0x20_0000 + rng.range(0, 0x1000) * 8;
            let d = SplitDescriptor::new(
                addr,
                rng.range(1, 4096) as u32,
                flags,
                if last { 0 } else { idxs[i + 1] },
            );
            mock.desc_table()
                .store(idx, RawDescriptor::from(d))
                .unwrap();
        }
        heads.push(idxs[0]);
    }
    for k in 0..3u16 {
        let n = rng.range(1, 24) as u16;
        let table_addr = super::HIGH_RAM_BASE + u64::from(k) * 0x1000;
        let table = DescriptorTable::new(mem, GuestAddress(table_addr), n);
        let writable_from = rng.range(0, u64::from(n) + 1) as u16;
        for i in 0..n {
            let last = i + 1 == n;
            let flags = if i >= writable_from { DESC_F_WRITE } else { 0 }
                | if last { 0 } else { DESC_F_NEXT };
            let d = SplitDescriptor::new(
                0x30_0000 + rng.range(0, 0x1000) * 64,
                rng.range(1, 0x1_0000) as u32,
                flags,
                if last { 0 } else { i + 1 },
            );
            table.store(i, RawDescriptor::from(d)).unwrap();
        }
        let head = size - 3 + k;
        let d = SplitDescriptor::new(table_addr, 16 * u32::from(n), DESC_F_INDIRECT, 0);
        mock.desc_table()
            .store(head, RawDescriptor::from(d))
            .unwrap();
        heads.push(head);
    }
    let avail = mock.avail_addr();
    let mut idx: u16 = mem.read_obj(avail.unchecked_add_raw(2)).unwrap();
    for h in heads {
        let at = avail.unchecked_add_raw(4 + 2 * u64::from(idx % size));
        mem.write_obj(h, at).unwrap();
        idx = idx.wrapping_add(1);
    }
    mem.write_obj(idx, avail.unchecked_add_raw(2)).unwrap();
    mock
}

trait AddRaw {
    fn unchecked_add_raw(self, n: u64) -> GuestAddress;
}

impl AddRaw for GuestAddress {
    fn unchecked_add_raw(self, n: u64) -> GuestAddress {
        GuestAddress(self.0 + n)
    }
}

fn reference_chains(mem: &GuestMemoryMmap, q: &mut VqQueue) -> Vec<(u16, Flat)> {
    q.iter(mem)
        .expect("reference iter")
        .map(|chain| {
            let head = chain.head_index();
            let descs = chain
                .map(|d| (d.addr().0, d.len(), d.is_write_only()))
                .collect();
            (head, descs)
        })
        .collect()
}

fn our_queue(mock: &MockSplitQueue<'_, GuestMemoryMmap>, size: u16, p: &TestPlatform) -> Queue {
    let mut q = Queue::new(size);
    q.set_size(size);
    q.set_desc_table(mock.desc_table_addr().0);
    q.set_avail_ring(mock.avail_addr().0);
    q.set_used_ring(mock.used_addr().0);
    q.set_features(true, true);
    q.set_ready(p).expect("valid layout");
    q
}

fn our_chains(q: &mut Queue, p: &TestPlatform) -> Vec<(u16, Flat)> {
    let mut out = Vec::new();
    let mut chain = Chain::new();
    while q.pop(p, &mut chain).expect("well-formed chains") {
        let flat = chain
            .buffers()
            .iter()
            .map(|b| (b.addr, b.len, b.writable))
            .collect();
        out.push((chain.head(), flat));
    }
    out
}

#[test]
fn chains_match_virtio_queue() {
    for (seed, size) in [(1, 64u16), (2, 128), (3, 256), (4, 64), (5, 1024)] {
        let p = TestPlatform::new(0);
        let mock = populate(&p.mem, size, seed);
        let mut reference: VqQueue = mock.create_queue().unwrap();
        reference.set_event_idx(true);
        let expected = reference_chains(&p.mem, &mut reference);
        let mut ours = our_queue(&mock, size, &p);
        let got = our_chains(&mut ours, &p);
        assert!(
            expected.len() > 10,
            "scenario too small: {}",
            expected.len()
        );
        assert!(
            expected.iter().any(|(_, c)| c.len() > 4),
            "no indirect chain"
        );
        assert_eq!(got, expected, "seed {seed}");
        assert_eq!(ours.next_avail(), reference.next_avail());
    }
}

#[test]
fn used_ring_and_notifications_match_virtio_queue() {
    for seed in 10..16u64 {
        let size = 128u16;
        let mut rng = Rng::new(seed);
        // Two identical guests: one served by the reference, one by us.
        let theirs_p = TestPlatform::new(0);
        let mut ours_p = TestPlatform::new(0);
        let mock_a = populate(&theirs_p.mem, size, seed);
        let mock_b = populate(&ours_p.mem, size, seed);
        let mut theirs: VqQueue = mock_a.create_queue().unwrap();
        theirs.set_event_idx(true);
        let mut ours = our_queue(&mock_b, size, &ours_p);
        let heads: Vec<u16> = reference_chains(&theirs_p.mem, &mut theirs)
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        let ours_heads: Vec<u16> = our_chains(&mut ours, &ours_p)
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        assert_eq!(heads, ours_heads);
        let used_addr = mock_a.used_addr();
        let avail_addr = mock_a.avail_addr();

        // Return the chains in a shuffled order, in batches, with the
        // driver moving used_event around.
        let mut order = heads.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.range(0, i as u64 + 1) as usize);
        }
        let mut notified = 0;
        for batch in order.chunks(3) {
            let used_event = ours.next_used().wrapping_add(rng.range(0, 6) as u16);
            let at = avail_addr.unchecked_add_raw(4 + 2 * u64::from(size));
            theirs_p.mem.write_obj(used_event, at).unwrap();
            ours_p.mem.write_obj(used_event, at).unwrap();
            for &h in batch {
                let len = rng.range(0, 5000) as u32;
                theirs.add_used(&theirs_p.mem, h, len).unwrap();
                ours.add_used(&mut ours_p, h, len).unwrap();
            }
            let a = theirs.needs_notification(&theirs_p.mem).unwrap();
            let b = ours.needs_notification(&ours_p).unwrap();
            assert_eq!(a, b, "seed {seed} used_event {used_event}");
            notified += usize::from(b);
        }
        assert!(notified > 0, "no batch crossed used_event");
        assert!(notified < order.len().div_ceil(3), "every batch notified");

        let a = theirs.enable_notification(&theirs_p.mem).unwrap();
        let b = ours.enable_notification(&mut ours_p).unwrap();
        assert_eq!(a, b);
        let ring = (
            used_addr.0,
            protocol::virtio::queue::used_ring_size(size) as usize,
        );
        let mut ra = std::vec![0u8; ring.1];
        let mut rb = std::vec![0u8; ring.1];
        theirs_p.mem.read_slice(&mut ra, used_addr).unwrap();
        ours_p.mem.read_slice(&mut rb, used_addr).unwrap();
        assert_eq!(ra, rb, "used ring bytes differ (seed {seed})");
        let avail_event: u16 = ours_p
            .mem
            .read_obj(used_addr.unchecked_add_raw(avail_event_offset(size)))
            .unwrap();
        assert_eq!(avail_event, ours.next_avail());
    }
}

#[test]
fn notification_without_event_idx_follows_the_ring_flags() {
    let size = 16u16;
    let mut p = TestPlatform::new(0);
    // A second handle on the same memory, for the mock to borrow.
    let mem = p.mem.clone();
    let mock = MockSplitQueue::new(&mem, size);
    mock.add_desc_chains(
        &[RawDescriptor::from(SplitDescriptor::new(
            0x10_0000, 64, 0, 0,
        ))],
        0,
    )
    .unwrap();
    let mut q = our_queue(&mock, size, &p);
    q.set_features(false, false);
    let mut chain = Chain::new();
    assert!(q.pop(&p, &mut chain).unwrap());
    q.add_used(&mut p, chain.head(), 0).unwrap();
    assert!(q.needs_notification(&p).unwrap(), "flags 0: notify");
    assert!(!q.needs_notification(&p).unwrap(), "nothing new: no notify");
    // The driver asks for no interrupts.
    p.mem.write_obj(1u16, mock.avail_addr()).unwrap();
    q.add_used(&mut p, chain.head(), 0).unwrap();
    assert!(!q.needs_notification(&p).unwrap());
    // The device asks for no notifications while busy, and back.
    q.disable_notification(&mut p).unwrap();
    assert_eq!(p.mem.read_obj::<u16>(mock.used_addr()).unwrap(), 1);
    assert!(!q.enable_notification(&mut p).unwrap());
    assert_eq!(p.mem.read_obj::<u16>(mock.used_addr()).unwrap(), 0);
}
