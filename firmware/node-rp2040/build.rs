//! Puts `memory.x` where the linker (cortex-m-rt's `link.x`) finds it and rebuilds
//! when it changes.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    File::create(out.join("memory.x"))
        .and_then(|mut f| f.write_all(include_bytes!("memory.x")))
        .expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
