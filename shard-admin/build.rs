//! Rebuilds the crate when a migration is added or removed: `embed_migrations!`
//! (`migrate::MIGRATIONS`) reads the folder at compile time, and cargo does not know it
//! does.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
