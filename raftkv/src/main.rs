//! raftkv: the reference replicated KV store.
fn main() {
    eprintln!("raftkv: the demo is not built yet (see the open issue for raftkv demo)");
    std::process::exit(2);
}
