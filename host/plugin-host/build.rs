//! Builds the guest workspace `plugins/` (default, example and test plugins)
//! for wasm32-wasip2 so `cargo build --release` alone yields a binary with
//! its default plugins embedded. The inner cargo gets its own target dir
//! (beside this profile's output) and a clean environment: the outer
//! build's RUSTFLAGS and jobserver would break or stall it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().expect("repository root");
    let plugins = root.join("plugins");
    for p in ["Cargo.toml", "Cargo.lock", "sdk", "sdk-macros"] {
        println!("cargo:rerun-if-changed={}", plugins.join(p).display());
    }
    // Each Rust guest crate; not the Python examples (built by their own
    // script, they would only trigger needless rebuilds of this crate).
    for group in ["default", "examples", "tests"] {
        let Ok(dir) = std::fs::read_dir(plugins.join(group)) else {
            continue;
        };
        for entry in dir.flatten() {
            if entry.path().join("Cargo.toml").exists() {
                println!("cargo:rerun-if-changed={}", entry.path().display());
            }
        }
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = out.ancestors().nth(3).expect("profile dir").join("wasm-plugins");
    check_target_installed();

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins).args(["build", "--release", "--target", TARGET, "--target-dir"]).arg(&target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    // The outer build's profile settings must not leak into the guests'.
    for (k, _) in env::vars() {
        if k.starts_with("CARGO_PROFILE_") || k.starts_with("CARGO_FEATURE_") {
            cmd.env_remove(k);
        }
    }
    let status = cmd.status().expect("running cargo for plugins/");
    if !status.success() {
        panic!("building the wasm plugins in {} failed (see the errors above)", plugins.display());
    }
    let wasm_dir = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=FERRYMAIL_PLUGIN_WASM_DIR={}", wasm_dir.display());
}

/// A missing target gives a clear instruction instead of a page of errors.
fn check_target_installed() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(sysroot) = sysroot {
        let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
        if !lib.exists() {
            panic!(
                "the {TARGET} Rust target is not installed; ferrymail's plugins are wasm components.\n\
                 Install it once with:  rustup target add {TARGET}"
            );
        }
    }
}
