//! [`Window`]: a guest's RAM as Dom0 sees it, through the foreign window
//! the core mapped for it.

/// A guest's RAM as Dom0 sees it: guest-physical `g` is at Dom0-physical
/// `base + g`, for `g < bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    base: u64,
    bytes: u64,
}

impl Window {
    /// The window at `base` of `bytes`, if it is a plausible foreign
    /// window: at or above [`protocol::device::FOREIGN_BASE`], no larger
    /// than a window maps ([`protocol::device::MAX_WINDOW_BYTES`]), not
    /// empty.
    pub fn new(base: u64, bytes: u64) -> Option<Self> {
        let plausible = base >= protocol::device::FOREIGN_BASE
            && bytes > 0
            && bytes <= protocol::device::MAX_WINDOW_BYTES
            && base.checked_add(bytes).is_some();
        plausible.then_some(Self { base, bytes })
    }

    /// True if `[gpa, gpa + len)` lies inside the guest's RAM; a zero
    /// `len` asks whether `gpa` may start a range.
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        if len == 0 {
            return gpa < self.bytes;
        }
        gpa.checked_add(len).is_some_and(|end| end <= self.bytes)
    }

    /// The Dom0-physical address of `len` bytes at guest-physical `gpa`,
    /// if they lie inside the guest's RAM.
    pub fn dom0_addr(&self, gpa: u64, len: u64) -> Option<u64> {
        self.contains(gpa, len).then_some(self.base + gpa)
    }
}
