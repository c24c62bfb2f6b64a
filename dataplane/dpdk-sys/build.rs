//! Finds the system DPDK with pkg-config, generates the Rust declarations with bindgen over
//! `src/shim.h`, and compiles `src/shim.c` (DPDK's static inline fast path) with the same flags.
//!
//! Nothing here names a DPDK library: the libraries come from `pkg-config --libs libdpdk`.
//! Poll-mode drivers are not linked at all: a shared-library DPDK build loads every driver in its
//! driver directory (`RTE_EAL_PMD_PATH`) from `rte_eal_init`, so `--vdev=net_ring0` works in
//! any binary that links `librte_eal.so`; `tests/dpdk_smoke.rs` in `dataplane` checks it.
//!
//! All of that is the `link` feature (on by default). Without it the script does nothing and
//! the crate is empty, so neither libdpdk nor libclang is needed: `cargo test --workspace
//! --no-default-features` builds this crate too (it is a member), on machines without DPDK.
#[cfg(feature = "link")]
use std::{env, path::PathBuf, process::Command};

#[cfg(feature = "link")]
const MIN_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "link")]
    link();
}

/// Probes libdpdk, compiles the shim, writes the bindings and the link lines.
#[cfg(feature = "link")]
fn link() {
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/shim.c");

    let dpdk = pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .cargo_metadata(false) // printed below, after the shim, so the link order is right
        .env_metadata(true)
        .probe("libdpdk")
        .unwrap_or_else(|_| {
            // One line and no backtrace: this is a missing system package, not a bug.
            eprintln!(
                "libdpdk (>= {MIN_VERSION}) not found by pkg-config: run scripts/setup.sh, \
                 which installs libdpdk-dev"
            );
            std::process::exit(1)
        });
    let cflags = raw_cflags();

    // The shim: built with DPDK's own cflags (-include rte_config.h, -march), because the inline
    // functions it instantiates are compiled for that target.
    let mut shim = cc::Build::new();
    shim.file("src/shim.c")
        .include("src")
        .warnings(true)
        .opt_level(3);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("ct_dpdk_shim");

    // The DPDK libraries come after the static shim on the link line: with `--as-needed` a
    // shared library is kept only if something earlier on the line uses it.
    for path in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", path.display());
    }
    for lib in &dpdk.libs {
        println!("cargo:rustc-link-lib={lib}");
    }
    // `dpdk.ld_args` holds only `--as-needed`; rustc already links that way, and link arguments
    // of a library's build script would not reach the final binary anyway.
    for dir in &dpdk.include_paths {
        println!("cargo:include={}", dir.display());
    }
    println!("cargo:version={}", dpdk.version);

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    generate_bindings(&cflags)
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}

/// `pkg-config --cflags libdpdk`, word by word. The `pkg-config` crate keeps only `-I` and
/// `-D`; bindgen and the shim also need `-include rte_config.h` and `-march=...`.
#[cfg(feature = "link")]
fn raw_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {pkg_config} --cflags libdpdk: {e}"));
    assert!(
        output.status.success(),
        "{pkg_config} --cflags libdpdk failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[cfg(feature = "link")]
fn generate_bindings(cflags: &[String]) -> bindgen::Bindings {
    let target = bindgen::RustTarget::stable(80, 0).expect("a Rust version bindgen knows");
    bindgen::Builder::default()
        .header("src/shim.h")
        .clang_args(cflags)
        .clang_arg("-Isrc")
        .rust_target(target)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("rte_.*|ct_.*")
        .allowlist_type("rte_.*|RTE_.*")
        .allowlist_var("rte_.*|RTE_.*|LCORE_ID_ANY|SOCKET_ID_ANY|ENOTSUP|ENODEV|EBUSY|EINVAL")
        // Packed protocol headers that transitively contain aligned types (rustc rejects those
        // layouts, E0588), all from rte_flow / rte_gtp / rte_l2tpv2; nothing here reads them.
        .opaque_type("rte_l2tpv2_.*|rte_gtp_.*|rte_flow_item_.*")
        // Thread-local per-lcore variables are not plain statics: use ct_errno() instead.
        .blocklist_item("per_lcore_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(false)
        .generate_comments(false)
        .layout_tests(true)
        .generate()
        .expect("bindgen failed on src/shim.h with the libdpdk cflags")
}
