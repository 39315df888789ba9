#!/usr/bin/env python3
"""Writes the hand-made seeds of the virtqueue and ioreq targets into
corpus/: scripts in which a driver does things right (a write, a read, a
flush and a get-id on a disk; output and input on a console), so that
the fuzzer starts from requests that reach the device and mutates them.
The script format is the one fuzz_targets/virtqueue.rs and ioreq.rs read.

Run: python3 fuzz/seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# The layout of hyp_fuzz::bring_up: queue n's rings at n * 0x1000.
QUEUE_SIZE = 16
def rings(q):
    desc = q * 0x1000
    avail = desc + 16 * QUEUE_SIZE
    return desc, avail, avail + 0x100

# virtio-blk request types, descriptor flags, feature bits.
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
NEXT, WRITE = 1, 2


def ram(at, data):
    """Script op 0: write `data` (up to 255 bytes) at guest address `at`."""
    assert len(data) <= 255
    return bytes([0]) + struct.pack("<HB", at, len(data)) + data


def descs(segs, first=0):
    """A chain of (addr, len, device-writable) as linked descriptors, the
    first at index `first` of the table."""
    out = b""
    for i, (addr, length, write) in enumerate(segs):
        last = i + 1 == len(segs)
        flags = (WRITE if write else 0) | (0 if last else NEXT)
        out += struct.pack("<QIHH", addr, length, flags, 0 if last else first + i + 1)
    return out


NOTIFY = bytes([2])
COMPLETE = bytes([3, 4])  # the oldest held I/O, performed


def blk_request(kind, sector, data_len, data_write, slot):
    """A whole request on queue 0 in avail slot `slot`: header, data,
    status, the chain at descriptor 3 * slot, the avail entry and index."""
    desc, avail, _ = rings(0)
    header = 0x4000 + 0x40 * slot
    data = 0x8000 + 0x1000 * slot
    segs = [(header, 16, False)]
    if data_len:
        segs.append((data, data_len, data_write))
    segs.append((header + 0x20, 1, True))
    head = 3 * slot
    chain = descs(segs, head)
    return (
        ram(header, struct.pack("<IIQ", kind, 0, sector))
        + ram(desc + 16 * head, chain)
        + ram(avail + 4 + 2 * slot, struct.pack("<H", head))
        + ram(avail + 2, struct.pack("<H", slot + 1))
        + NOTIFY
        + COMPLETE
    )


def virtqueue_seeds():
    blk = bytes([0x0C])  # a writable disk, event-idx and indirect
    blk += blk_request(T_OUT, 2, 512, False, 0)
    blk += blk_request(T_IN, 2, 512, True, 1)
    blk += blk_request(T_FLUSH, 0, 0, False, 2)
    blk += blk_request(T_GET_ID, 0, 20, True, 3)
    yield "seed-blk", blk
    yield "seed-blk-readonly", bytes([0x02]) + blk[1:]
    # A console: a line out on the transmit queue, input into a receive
    # buffer.
    rx_desc, rx_avail, _ = rings(0)
    tx_desc, tx_avail, _ = rings(1)
    console = bytes([0x01])
    console += ram(0x4000, b"hello from a guest\n")
    console += ram(tx_desc, descs([(0x4000, 19, False)]))
    console += ram(tx_avail + 2, struct.pack("<HH", 1, 0))
    console += NOTIFY
    console += ram(rx_desc, descs([(0x5000, 64, True)]))
    console += ram(rx_avail + 2, struct.pack("<HH", 1, 0))
    console += bytes([6, 5]) + b"input"
    yield "seed-console", console


def slot(addr, value, read=False, size=4):
    """Script op 0 of the ioreq target: one ready MMIO slot."""
    state_ready, dir_write, dir_read, mmio = 1, 0, 1, 1
    flags = (((dir_read if read else dir_write) & 1) << 5) | state_ready
    return bytes([0]) + struct.pack("<QQIIIHBB", addr, value, 1, size, 7, 0, flags, mmio)


def ioreq_seeds():
    base = 0xD000_0000
    status, features_sel, features, queue_sel, queue_num, ready = 0x70, 0x24, 0x20, 0x30, 0x38, 0x44
    desc, avail, used = rings(0)
    s = bytes([0])  # the disk is brought up through the slots below
    s += slot(base + 0x00, 0, read=True)  # MagicValue
    s += slot(base + status, 0)
    s += slot(base + status, 1)
    s += slot(base + status, 3)
    s += slot(base + features_sel, 1) + slot(base + features, 1)  # VERSION_1
    s += slot(base + status, 11)
    s += slot(base + queue_sel, 0) + slot(base + queue_num, QUEUE_SIZE)
    for low, addr in [(0x80, desc), (0x90, avail), (0xA0, used)]:
        s += slot(base + low, addr) + slot(base + low + 4, 0)
    s += slot(base + ready, 1)
    s += slot(base + status, 15)
    s += slot(base + 0x100, 0, read=True, size=8)  # capacity
    # A write request, then QueueNotify through a slot; op 3 completes.
    header, data = 0x4000, 0x8000
    s += bytes([2]) + struct.pack("<HB", header, 16) + struct.pack("<IIQ", T_OUT, 0, 1)
    chain = descs([(header, 16, False), (data, 512, False), (header + 0x20, 1, True)])
    s += bytes([2]) + struct.pack("<HB", desc, len(chain)) + chain
    s += bytes([2]) + struct.pack("<HB", avail + 2, 4) + struct.pack("<HH", 1, 0)
    s += slot(base + 0x50, 0) + bytes([3])
    s += slot(base + 0x1000 + 0x08, 0, read=True)  # the console's DeviceID
    yield "seed-bring-up", s


def main():
    for target, seeds in [("virtqueue", virtqueue_seeds()), ("ioreq", ioreq_seeds())]:
        os.makedirs(os.path.join(HERE, "corpus", target), exist_ok=True)
        for name, data in seeds:
            with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
