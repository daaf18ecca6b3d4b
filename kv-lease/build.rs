//! Declares the `loom` cfg so `#[cfg(loom)]` passes the `unexpected_cfgs` lint. (The crate takes
//! its lints from the workspace, and Cargo does not let a member add to `[lints]` then.)
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
