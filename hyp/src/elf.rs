//! Loading a kernel: a static 64-bit x86 ELF executable.
//!
//! Every `PT_LOAD` segment is checked against the file and against the
//! domain's RAM before a byte is copied, and the part of each segment
//! beyond its file contents (`.bss`) is zeroed.

use crate::memory::GuestRam;
use protocol::memory::{KERNEL_BASE, PAGE_SIZE};

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;
/// Most program headers a kernel may have.
const MAX_PHDRS: u16 = 64;

/// Why a kernel image cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// The file ends before the ELF header does.
    #[error("truncated: {0} bytes is shorter than an ELF header")]
    TooShort(usize),
    /// The first four bytes are not `\x7fELF`.
    #[error("not an ELF file (bad magic)")]
    BadMagic,
    /// Not a little-endian 64-bit ELF.
    #[error("not a 64-bit little-endian ELF (class {class}, data {data})")]
    WrongClass {
        /// `EI_CLASS`.
        class: u8,
        /// `EI_DATA`.
        data: u8,
    },
    /// Built for another machine.
    #[error("built for machine {0}, not x86-64 (62)")]
    WrongMachine(u16),
    /// Not an executable (a relocatable object or shared library).
    #[error("ELF type {0} is not an executable (2)")]
    NotExecutable(u16),
    /// The program-header table does not fit in the file.
    #[error(
        "truncated: program headers ({count} at offset {offset}) run past the end of the file"
    )]
    HeadersTruncated {
        /// `e_phoff`.
        offset: u64,
        /// `e_phnum`.
        count: u16,
    },
    /// A program header has an unexpected size or there are too many.
    #[error("malformed program-header table (entry size {size}, {count} entries)")]
    BadHeaderTable {
        /// `e_phentsize`.
        size: u16,
        /// `e_phnum`.
        count: u16,
    },
    /// A segment's file contents run past the end of the file.
    #[error(
        "truncated: segment {index} needs file bytes {offset:#x}..{end:#x}, file has {file_len:#x}"
    )]
    SegmentTruncated {
        /// Program-header index.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_offset + p_filesz`.
        end: u64,
        /// Length of the file.
        file_len: usize,
    },
    /// A segment's file size exceeds its memory size.
    #[error("segment {index}: file size {filesz:#x} exceeds memory size {memsz:#x}")]
    FileLargerThanMemory {
        /// Program-header index.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A segment does not fit in the domain's RAM above the kernel base.
    #[error("segment {index} at {start:#x}..{end:#x} lies outside the domain's RAM ({base:#x}..{ram:#x})")]
    SegmentOutsideRam {
        /// Program-header index.
        index: usize,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// Lowest loadable address.
        base: u64,
        /// RAM size.
        ram: u64,
    },
    /// There is nothing to load.
    #[error("no loadable segment")]
    NoLoadableSegment,
    /// The entry point is not inside a loaded segment.
    #[error("entry point {0:#x} is not inside a loaded segment")]
    EntryOutsideImage(u64),
}

/// Where a loaded kernel starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The entry point.
    pub entry: u64,
    /// First free byte after the image, rounded up to a page.
    pub end: u64,
}

struct Segment {
    index: usize,
    offset: u64,
    addr: u64,
    filesz: u64,
    memsz: u64,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks `image` completely, then copies it into `ram`.
pub fn load(image: &[u8], ram: &GuestRam) -> Result<LoadedKernel, ElfError> {
    let segments = parse(image, ram.size())?;
    let entry = u64_at(image, 24);
    if !segments
        .iter()
        .any(|s| entry >= s.addr && entry < s.addr + s.memsz)
    {
        return Err(ElfError::EntryOutsideImage(entry));
    }
    let mut end = 0;
    for segment in &segments {
        let contents = &image[segment.offset as usize..(segment.offset + segment.filesz) as usize];
        let copied = ram.write(segment.addr, contents);
        let zeroed = ram.zero(
            segment.addr + segment.filesz,
            segment.memsz - segment.filesz,
        );
        // `parse` checked the bounds, so these cannot fail.
        debug_assert!(copied && zeroed);
        end = end.max(segment.addr + segment.memsz);
    }
    Ok(LoadedKernel {
        entry,
        end: end.div_ceil(PAGE_SIZE) * PAGE_SIZE,
    })
}

fn parse(image: &[u8], ram_size: u64) -> Result<Vec<Segment>, ElfError> {
    if image.len() < EHDR_SIZE {
        return Err(ElfError::TooShort(image.len()));
    }
    if &image[..4] != b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    if image[4] != 2 || image[5] != 1 {
        return Err(ElfError::WrongClass {
            class: image[4],
            data: image[5],
        });
    }
    let machine = u16_at(image, 18);
    if machine != EM_X86_64 {
        return Err(ElfError::WrongMachine(machine));
    }
    let kind = u16_at(image, 16);
    if kind != ET_EXEC {
        return Err(ElfError::NotExecutable(kind));
    }
    let phoff = u64_at(image, 32);
    let phentsize = u16_at(image, 54);
    let phnum = u16_at(image, 56);
    if phentsize as usize != PHDR_SIZE || phnum > MAX_PHDRS {
        return Err(ElfError::BadHeaderTable {
            size: phentsize,
            count: phnum,
        });
    }
    let table_end = phoff.checked_add(phnum as u64 * PHDR_SIZE as u64);
    if table_end.is_none_or(|end| end > image.len() as u64) {
        return Err(ElfError::HeadersTruncated {
            offset: phoff,
            count: phnum,
        });
    }
    let mut segments = Vec::new();
    for index in 0..phnum as usize {
        let at = phoff as usize + index * PHDR_SIZE;
        if u32_at(image, at) != PT_LOAD {
            continue;
        }
        let segment = Segment {
            index,
            offset: u64_at(image, at + 8),
            addr: u64_at(image, at + 24), // p_paddr: guest-physical
            filesz: u64_at(image, at + 32),
            memsz: u64_at(image, at + 40),
        };
        check_segment(&segment, image.len(), ram_size)?;
        if segment.memsz > 0 {
            segments.push(segment);
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegment);
    }
    Ok(segments)
}

fn check_segment(s: &Segment, file_len: usize, ram_size: u64) -> Result<(), ElfError> {
    let file_end = s.offset.checked_add(s.filesz);
    if file_end.is_none_or(|end| end > file_len as u64) {
        return Err(ElfError::SegmentTruncated {
            index: s.index,
            offset: s.offset,
            end: file_end.unwrap_or(u64::MAX),
            file_len,
        });
    }
    if s.filesz > s.memsz {
        return Err(ElfError::FileLargerThanMemory {
            index: s.index,
            filesz: s.filesz,
            memsz: s.memsz,
        });
    }
    let end = s.addr.checked_add(s.memsz);
    if s.addr < KERNEL_BASE || end.is_none_or(|end| end > ram_size) {
        return Err(ElfError::SegmentOutsideRam {
            index: s.index,
            start: s.addr,
            end: end.unwrap_or(u64::MAX),
            base: KERNEL_BASE,
            ram: ram_size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PT_LOAD segment at `addr` with `code`, `memsz` bytes in memory.
    fn image(code: &[u8], addr: u64, memsz: u64) -> Vec<u8> {
        let mut elf = vec![0u8; EHDR_SIZE + PHDR_SIZE];
        elf[..4].copy_from_slice(b"\x7fELF");
        (elf[4], elf[5]) = (2, 1);
        elf[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        elf[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        elf[24..32].copy_from_slice(&addr.to_le_bytes());
        elf[32..40].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        elf[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        elf[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = EHDR_SIZE;
        elf[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&((EHDR_SIZE + PHDR_SIZE) as u64).to_le_bytes());
        elf[ph + 24..ph + 32].copy_from_slice(&addr.to_le_bytes());
        elf[ph + 32..ph + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
        elf[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        elf.extend_from_slice(code);
        elf
    }

    fn ram() -> GuestRam {
        GuestRam::new("elf-test", 4 << 20).unwrap()
    }

    #[test]
    fn loads_code_and_zeroes_bss() {
        let ram = ram();
        ram.write(KERNEL_BASE + 4, &[0xAA; 16]);
        let kernel = load(&image(&[1, 2, 3, 4], KERNEL_BASE, 0x2001), &ram).unwrap();
        assert_eq!(
            kernel,
            LoadedKernel {
                entry: KERNEL_BASE,
                end: KERNEL_BASE + 0x3000
            }
        );
        assert_eq!(ram.read(KERNEL_BASE, 8).unwrap(), [1, 2, 3, 4, 0, 0, 0, 0]);
        assert_eq!(
            ram.read(KERNEL_BASE + 8, 12).unwrap(),
            [0; 12],
            "stale bytes under .bss are zeroed"
        );
    }

    #[test]
    fn rejects_each_malformed_image_with_its_reason() {
        let ram = ram();
        let good = image(&[0xF4], KERNEL_BASE, 16);
        let patched = |at: usize, bytes: &[u8]| {
            let mut elf = good.clone();
            elf[at..at + bytes.len()].copy_from_slice(bytes);
            elf
        };
        let cases = [
            (good[..10].to_vec(), ElfError::TooShort(10)),
            (patched(0, b"\x7fELG"), ElfError::BadMagic),
            (patched(4, &[1]), ElfError::WrongClass { class: 1, data: 1 }),
            (
                patched(18, &40u16.to_le_bytes()),
                ElfError::WrongMachine(40),
            ),
            (patched(16, &3u16.to_le_bytes()), ElfError::NotExecutable(3)),
            (
                patched(32, &4096u64.to_le_bytes()),
                ElfError::HeadersTruncated {
                    offset: 4096,
                    count: 1,
                },
            ),
            (
                patched(54, &32u16.to_le_bytes()),
                ElfError::BadHeaderTable { size: 32, count: 1 },
            ),
            (
                good[..good.len() - 1].to_vec(),
                ElfError::SegmentTruncated {
                    index: 0,
                    offset: 120,
                    end: 121,
                    file_len: 120,
                },
            ),
            (
                patched(24, &0u64.to_le_bytes()),
                ElfError::EntryOutsideImage(0),
            ),
            (
                image(&[0xF4; 32], KERNEL_BASE, 16),
                ElfError::FileLargerThanMemory {
                    index: 0,
                    filesz: 32,
                    memsz: 16,
                },
            ),
            (
                image(&[0xF4], 0x1000, 16),
                ElfError::SegmentOutsideRam {
                    index: 0,
                    start: 0x1000,
                    end: 0x1010,
                    base: KERNEL_BASE,
                    ram: 4 << 20,
                },
            ),
            (
                image(&[0xF4], u64::MAX - 4, 16),
                ElfError::SegmentOutsideRam {
                    index: 0,
                    start: u64::MAX - 4,
                    end: u64::MAX,
                    base: KERNEL_BASE,
                    ram: 4 << 20,
                },
            ),
            (
                patched(EHDR_SIZE, &0u32.to_le_bytes()),
                ElfError::NoLoadableSegment,
            ),
        ];
        for (elf, expected) in cases {
            assert_eq!(load(&elf, &ram), Err(expected.clone()), "{expected}");
        }
        assert_eq!(
            ram.read(KERNEL_BASE, 1).unwrap(),
            [0],
            "nothing was copied by a failed load"
        );
    }
}
