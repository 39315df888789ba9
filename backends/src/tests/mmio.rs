//! The virtio-mmio register file: identification, negotiation, resets and
//! bad accesses.

use protocol::virtio::feature;
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1};
use protocol::virtio::mmio as reg;

use super::driver::{base_features, bring_up, Driver};
use super::TestPlatform;
use crate::blk::{Blk, BlkConfig};
use crate::console::Console;
use crate::mmio::MmioTransport;
use crate::platform::Interrupt;

fn blk() -> (TestPlatform, MmioTransport<Blk>) {
    (
        TestPlatform::new(1 << 20),
        MmioTransport::new(Blk::new(BlkConfig::new(1 << 20))),
    )
}

#[test]
fn identifies_itself() {
    let (_, mut t) = blk();
    assert_eq!(t.read(reg::MAGIC_VALUE, 4), 0x7472_6976);
    assert_eq!(t.read(reg::VERSION, 4), 2);
    assert_eq!(t.read(reg::DEVICE_ID, 4), u64::from(reg::DEVICE_ID_BLOCK));
    assert_eq!(t.read(reg::VENDOR_ID, 4), u64::from(reg::VENDOR_ID_HYP));
    assert_eq!(t.read(reg::QUEUE_NUM_MAX, 4), 256);
    let c = MmioTransport::new(Console::new(64));
    assert_eq!(
        c.read_only(reg::DEVICE_ID),
        u64::from(reg::DEVICE_ID_CONSOLE)
    );
    assert_eq!(t.stats().bad_accesses, 0);
}

impl<D: crate::VirtioDevice> MmioTransport<D> {
    fn read_only(mut self, offset: u64) -> u64 {
        self.read(offset, 4)
    }
}

#[test]
fn features_are_offered_in_two_words() {
    let (mut p, mut t) = blk();
    t.write(&mut p, reg::DEVICE_FEATURES_SEL, 4, 1);
    assert_eq!(t.read(reg::DEVICE_FEATURES, 4), 1, "VERSION_1 is bit 32");
    t.write(&mut p, reg::DEVICE_FEATURES_SEL, 4, 0);
    let low = t.read(reg::DEVICE_FEATURES, 4);
    assert_ne!(low & (1 << VIRTIO_F_EVENT_IDX), 0);
    t.write(&mut p, reg::DEVICE_FEATURES_SEL, 4, 7);
    assert_eq!(t.read(reg::DEVICE_FEATURES, 4), 0);
}

#[test]
fn features_ok_is_refused_for_bad_feature_sets() {
    let (mut p, mut t) = blk();
    let d = Driver::new(0, 16, 0x1000, 0x10_0000);
    // Without VERSION_1.
    let status = bring_up(&mut t, &mut p, feature(VIRTIO_F_EVENT_IDX), &[&d]);
    assert_eq!(status & reg::STATUS_FEATURES_OK, 0);
    // With a bit the device does not offer.
    let status = bring_up(&mut t, &mut p, base_features() | feature(50), &[&d]);
    assert_eq!(status & reg::STATUS_FEATURES_OK, 0);
    // DRIVER_OK without FEATURES_OK does not take.
    t.write(
        &mut p,
        reg::STATUS,
        4,
        u64::from(reg::STATUS_ACKNOWLEDGE | reg::STATUS_DRIVER),
    );
    t.write(
        &mut p,
        reg::STATUS,
        4,
        u64::from(reg::STATUS_ACKNOWLEDGE | reg::STATUS_DRIVER | reg::STATUS_DRIVER_OK),
    );
    assert_eq!(t.read(reg::STATUS, 4) as u32 & reg::STATUS_DRIVER_OK, 0);
    // A proper set is accepted.
    let status = bring_up(&mut t, &mut p, feature(VIRTIO_F_VERSION_1), &[&d]);
    assert_ne!(status & reg::STATUS_DRIVER_OK, 0);
    assert_eq!(t.driver_features(), feature(VIRTIO_F_VERSION_1));
}

#[test]
fn writing_zero_to_status_resets_everything() {
    let (mut p, mut t) = blk();
    let d = Driver::new(0, 16, 0x1000, 0x10_0000);
    bring_up(&mut t, &mut p, base_features(), &[&d]);
    assert_eq!(t.read(reg::QUEUE_READY, 4), 1);
    t.write(&mut p, reg::STATUS, 4, 0);
    assert_eq!(t.read(reg::STATUS, 4), 0);
    assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
    assert_eq!(t.driver_features(), 0);
    assert_eq!(t.stats().resets, 2, "bring_up resets first too");
    // Notifications after a reset are ignored.
    t.queue_notify(&mut p, 0);
    assert_eq!(t.stats().ignored_notifies, 1);
}

#[test]
fn queue_registers_freeze_once_running() {
    let (mut p, mut t) = blk();
    let d = Driver::new(0, 16, 0x1000, 0x10_0000);
    bring_up(&mut t, &mut p, base_features(), &[&d]);
    let before = t.stats().bad_accesses;
    t.write(&mut p, reg::QUEUE_SEL, 4, 0);
    t.write(&mut p, reg::QUEUE_DESC_LOW, 4, 0x5000);
    t.write(&mut p, reg::QUEUE_NUM, 4, 4);
    assert_eq!(t.queues()[0].desc_table(), d.desc);
    assert_eq!(t.queues()[0].size(), 16);
    t.write(&mut p, reg::DRIVER_FEATURES, 4, 0);
    assert_eq!(t.driver_features(), base_features());
    assert_eq!(t.stats().bad_accesses, before + 3);
    // A queue that does not exist.
    t.write(&mut p, reg::QUEUE_SEL, 4, 5);
    assert_eq!(t.read(reg::QUEUE_NUM_MAX, 4), 0);
    t.write(&mut p, reg::QUEUE_READY, 4, 1);
    assert_eq!(t.stats().bad_accesses, before + 4);
    t.queue_notify(&mut p, 5);
    t.write(&mut p, reg::QUEUE_NOTIFY, 4, 0x1_0000);
    assert_eq!(t.stats().ignored_notifies, 2);
}

#[test]
fn bad_accesses_read_zero_and_are_counted() {
    let (mut p, mut t) = blk();
    let cases: [(u64, u8); 8] = [
        (reg::MAGIC_VALUE, 2),     // wrong width
        (reg::MAGIC_VALUE + 1, 4), // unaligned
        (reg::MAGIC_VALUE, 8),     // wrong width
        (reg::QUEUE_NOTIFY, 4),    // write-only
        (reg::INTERRUPT_ACK, 4),   // write-only
        (0x0f0, 4),                // nothing there
        (reg::CONFIG + 60, 4),     // past the config space
        (reg::CONFIG + 2, 4),      // misaligned config access
    ];
    for (i, (offset, size)) in cases.iter().enumerate() {
        assert_eq!(t.read(*offset, *size), 0, "{offset:#x}/{size}");
        assert_eq!(t.stats().bad_accesses, i as u64 + 1);
    }
    // Writes to read-only registers and to the block config are ignored.
    t.write(&mut p, reg::MAGIC_VALUE, 4, 1);
    t.write(&mut p, reg::CONFIG, 4, 1);
    t.write(&mut p, reg::STATUS, 1, 1);
    t.write(&mut p, u64::MAX - 3, 4, 1);
    assert_eq!(t.stats().bad_accesses, cases.len() as u64 + 4);
    assert_eq!(t.read(reg::CONFIG, 4), (1 << 20) / 512);
    assert_eq!(t.read(reg::STATUS, 4), 0);
    // Status bits cannot be cleared without a reset, nor unknown ones set.
    t.write(&mut p, reg::STATUS, 4, u64::from(reg::STATUS_ACKNOWLEDGE));
    t.write(&mut p, reg::STATUS, 4, u64::from(reg::STATUS_DRIVER));
    t.write(
        &mut p,
        reg::STATUS,
        4,
        0x100 | u64::from(reg::STATUS_ACKNOWLEDGE),
    );
    assert_eq!(t.read(reg::STATUS, 4), u64::from(reg::STATUS_ACKNOWLEDGE));
}

#[test]
fn config_space_takes_narrow_accesses() {
    let (_, mut t) = blk();
    let capacity = (1u64 << 20) / 512;
    assert_eq!(t.read(reg::CONFIG, 1), capacity & 0xff);
    assert_eq!(t.read(reg::CONFIG + 1, 1), capacity >> 8 & 0xff);
    assert_eq!(t.read(reg::CONFIG, 2), capacity & 0xffff);
    assert_eq!(t.read(reg::CONFIG, 8), capacity);
    assert_eq!(t.read(reg::CONFIG + 20, 4), 512, "blk_size");
    assert_eq!(t.stats().bad_accesses, 0);
}

#[test]
fn interrupts_are_acknowledged_and_config_changes_bump_the_generation() {
    let (mut p, mut t) = blk();
    let d = Driver::new(0, 16, 0x1000, 0x10_0000);
    bring_up(&mut t, &mut p, base_features(), &[&d]);
    let generation = t.read(reg::CONFIG_GENERATION, 4);
    t.config_changed(&mut p);
    assert_eq!(t.read(reg::CONFIG_GENERATION, 4), generation + 1);
    assert_eq!(p.interrupts, [Interrupt::Config]);
    assert_eq!(
        t.read(reg::INTERRUPT_STATUS, 4),
        u64::from(reg::INT_CONFIG_CHANGE)
    );
    t.write(
        &mut p,
        reg::INTERRUPT_ACK,
        4,
        u64::from(reg::INT_CONFIG_CHANGE),
    );
    assert_eq!(t.read(reg::INTERRUPT_STATUS, 4), 0);
}

#[test]
fn no_shared_memory_regions() {
    let (_, mut t) = blk();
    assert_eq!(t.read(reg::SHM_LEN_LOW, 4), 0xffff_ffff);
    assert_eq!(t.read(reg::SHM_LEN_HIGH, 4), 0xffff_ffff);
}
