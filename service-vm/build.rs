//! Links the kernel with the guest runtime's linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../guest-runtime/kernel.ld");
    println!("cargo:rerun-if-changed=../guest-runtime/kernel.ld");
}
