//! Builds the attacker program of the security tests as a static executable: it runs inside
//! busybox containers that have no libraries. Built with the same rustc, std only.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "attack/nucleus-attack.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("nucleus-attack");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .expect("run rustc for the attacker program");
    assert!(status.success(), "building {src} failed");
    println!("cargo:rustc-env=NUCLEUS_ATTACK={}", out.display());
}
