//! Builds the freestanding guest kernels with their own settings
//! (`guest-runtime/cargo-config.toml`) in a separate target directory, then
//! checks that no ring-0 code uses SSE: this machine's ring-0 emulator
//! stops the VM on SSE arithmetic.

use std::path::{Path, PathBuf};
use std::process::Command;

const KERNELS: [&str; 2] = ["service-vm", "frontends"];
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = root.join("target").join("guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for dir in [
        "guest-runtime",
        "protocol",
        "backends",
        "service-vm",
        "frontends",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for kernel in KERNELS {
        let crate_dir = root.join(kernel);
        let status = Command::new(&cargo)
            .current_dir(&crate_dir)
            .args(["build", "--release", "--locked", "--target", TARGET])
            .arg("--config")
            .arg(root.join("guest-runtime/cargo-config.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("running cargo for a guest kernel");
        assert!(status.success(), "building the {kernel} kernel failed");
        let elf = target_dir.join(TARGET).join("release").join(kernel);
        check_ring0_has_no_sse(&elf);
        std::fs::copy(&elf, out.join(format!("{kernel}.elf"))).expect("copying the kernel image");
    }
    blank_example_disk(&root.join("target").join("images").join("guest.img"));
}

/// Leaves a blank raw image for `examples/guest.cfg` (sparse, 16 MiB),
/// unless one is already there: the guest writes it, so it is never
/// replaced.
fn blank_example_disk(path: &Path) {
    if path.exists() {
        return;
    }
    let made = std::fs::create_dir_all(path.parent().expect("images dir"))
        .and_then(|()| std::fs::File::create(path))
        .and_then(|file| file.set_len(16 << 20));
    if let Err(e) = made {
        println!("cargo:warning=could not make {}: {e}", path.display());
    }
}

/// Fails the build if any instruction between `__ring0_start` and
/// `__ring0_end` touches an XMM register.
fn check_ring0_has_no_sse(elf: &Path) {
    let output = match Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", "-M", "intel"])
        .arg(elf)
        .output()
    {
        Ok(output) if output.status.success() => output,
        _ => {
            println!("cargo:warning=objdump not found: ring-0 SSE check skipped");
            return;
        }
    };
    let listing = String::from_utf8_lossy(&output.stdout);
    let symbols = Command::new("nm").arg(elf).output().expect("running nm");
    let symbols = String::from_utf8_lossy(&symbols.stdout);
    let address = |name: &str| {
        symbols
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
            .unwrap_or_else(|| panic!("{name} missing from {}", elf.display()))
    };
    let (start, end) = (address("__ring0_start"), address("__ring0_end"));
    for line in listing.lines() {
        let Some((addr, insn)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        if (start..end).contains(&addr) && insn.contains("xmm") {
            panic!(
                "{}: ring-0 code uses SSE at {addr:#x}: {}",
                elf.display(),
                insn.trim()
            );
        }
    }
}
