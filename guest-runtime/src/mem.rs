//! The memory routines the compiler calls (`memcpy` and friends), which a
//! freestanding binary must provide. `rep movsb`/`rep stosb` are a single
//! instruction each, fast in ring 3 and cheap to emulate in ring 0, and
//! cannot be compiled back into a call to themselves.

/// Copies `n` bytes from `src` to `dest` (no overlap).
///
/// # Safety
/// Both ranges are valid for `n` bytes and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _,
            inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the ranges may overlap.
///
/// # Safety
/// Both ranges are valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize) + n {
        // SAFETY: a forward copy is correct when dest is below src or the
        // ranges are disjoint.
        return unsafe { memcpy(dest, src, n) };
    }
    // SAFETY: copy backwards from the last byte; the direction flag is
    // restored before returning.
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, options(nostack));
    }
    dest
}

/// Fills `n` bytes at `dest` with `value`.
///
/// # Safety
/// The range is valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _,
            in("al") value as u8, options(nostack, preserves_flags));
    }
    dest
}

/// Compares `n` bytes; negative, zero or positive like C's `memcmp`.
///
/// # Safety
/// Both ranges are valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: in bounds per the contract; volatile keeps LLVM from
        // turning this loop back into a call to memcmp.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// Like [`memcmp`] but only equal or not.
///
/// # Safety
/// Both ranges are valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}
