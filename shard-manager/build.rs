//! Lists the migrations in `../migrations` for the crate (`store::migrations`): which
//! every shard must have applied, by name, without embedding their SQL
//! (`control_plane::migrations` embeds it, and the admin CLI applies it). Rebuilds the crate when a migration is added,
//! renamed or removed.

use std::path::Path;

fn main() {
    let dir = Path::new("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    // A migration is a folder; hidden entries are not (as diesel reads the folder).
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    let list: String = names
        .iter()
        .map(|name| format!("    {name:?},\n"))
        .collect();
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("migrations.rs");
    std::fs::write(
        &out,
        format!("/// The folder names in `migrations/`, sorted.\npub const FOLDERS: &[&str] = &[\n{list}];\n"),
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
