//! Virtio layouts (being written).
