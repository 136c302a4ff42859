//! Embeds both migration folders (`migrations/`, the shards' schema, and
//! `metadata-migrations/`, the metadata database's; one folder per migration, diesel's
//! layout) as lists the crate includes (`migrations::SHARD`, `migrations::METADATA`):
//! each one's diesel version, name and `up.sql`, oldest first. Rebuilds the crate when a
//! migration is added or changed; cargo does not know the lists are read from those
//! folders otherwise.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled: one compiled script serves
    // every checkout that shares a target directory (worktrees), each with its own
    // migrations.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    for (folder, file) in [
        ("migrations", "shard_migrations.rs"),
        ("metadata-migrations", "metadata_migrations.rs"),
    ] {
        let dir = Path::new(&manifest).join("..").join(folder);
        let list = embed(&dir);
        let out = Path::new(&out).join(file);
        std::fs::write(&out, list).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
}

/// The list of the migrations in `dir`, as a Rust expression of `Migration`s.
fn embed(dir: &Path) -> String {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && dir.join(name).join("up.sql").is_file())
        .collect();
    names.sort();
    let mut list = String::from("&[\n");
    for name in &names {
        // diesel's version: the name up to its first `_`, without the dashes.
        let version = name.split('_').next().unwrap_or_default().replace('-', "");
        let up = dir.join(name).join("up.sql");
        writeln!(
            list,
            "    Migration {{ version: {version:?}, name: {name:?}, up: include_str!({:?}) }},",
            up.display().to_string()
        )
        .expect("writing to a String");
    }
    list.push_str("]\n");
    list
}
