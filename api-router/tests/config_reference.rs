//! The configuration reference (docs/src/configuration.md) is generated from the code:
//! every key of every settings struct, found by reading the struct's source from the
//! gateway's root `Settings` down; its type from the Rust type (an enum's values from
//! serde); its default from the built-in defaults (`config/default.toml` deserialized,
//! serde's defaults filling the rest) through each struct's `describe`; its environment
//! variable from the layering rule; what it does from its `///` lines.
//!
//! The test fails when the page and the code disagree, when a struct's `describe` and
//! its fields differ, when a key has no `///` line, or when a described default does not
//! deserialize back into the same settings. The same walk writes the list of every key
//! (`shard-manager/src/config/known_keys.txt`) that the binaries refuse any other key
//! against; the test fails when it is stale too. Regenerate both with
//! `UPDATE_REFERENCE=1 cargo test -p api-router --test config_reference`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use analytics::AnalyticsConfig;
use api_router::edge::cors::CorsSettings;
use api_router::server::settings::{AuthSettings, LimitsSettings, ServerSettings, Settings};
use api_router::server::tls::TlsSettings;
use api_router::server::traces::{OtlpProtocol, TracingSettings};
use control_plane::moves::auto_balance::BalancerSettings;
use serde::de::{DeserializeOwned, Visitor};
use serde_json::Value;
use shard_manager::config::{
    self, BackupSettings, Balance, CacheSettings, ChangesSettings, DatabaseSettings,
    FailoverSettings, MetadataSettings, MovesSettings, RangeSettings, ReplicationSettings,
    RoutingSettings, ShardFollows, ShardSettings, SslMode, Strategy, TableSettings, DEFAULT_CONFIG,
    ENV_LIST_KEYS,
};

const PAGE: &str = "docs/src/configuration.md";
/// Every key, one a line, for the strict check of files and variables at start-up.
const KEYS: &str = "shard-manager/src/config/known_keys.txt";
const REGENERATE: &str = "UPDATE_REFERENCE=1 cargo test -p api-router --test config_reference";

/// The page's opening, before the generated sections.
const PROLOGUE: &str = "\
One typed configuration for the gateway (`api-router`) and the admin CLI
(`shard-admin`). It is checked at start-up, and any problem is named precisely:
exactly one primary per shard, no server listed twice, every slot owned by exactly one
shard, valid table names, values in range.

## Layers

Later layers win:

1. `config/default.toml` in the working directory, or the copy built into the binary
   when that file is absent. It matches what `./setup.sh up` starts, and its values are
   the defaults below; a key it leaves out takes the default the code gives it.
2. `--config FILE` on `api-router` and `shard-admin`: a TOML file layered on top.
   A non-default `setup.sh` topology writes `.local/shardgate.toml`, which `run` passes.
3. Environment variables `SHARDGATE__SECTION__KEY` (double underscores), e.g.
   `SHARDGATE__SERVER__LISTEN=0.0.0.0:8080` or `SHARDGATE__DATABASE__PASSWORD=...`.

Every key below is the whole list: a key no binary reads, in a file or in a
`SHARDGATE__` variable, stops `api-router` at start-up and fails `shard-admin check`,
naming the key, where it was set and the nearest key that exists (`pool_max_siz`: did
you mean `pool_max_size`?). Variables with a single underscore after `SHARDGATE`
(`SHARDGATE_REPO`) are not configuration. The admin CLI accepts the gateway's sections
too, so one file serves both.

`api-router --listen 127.0.0.1:0` picks a free port and logs it. Secrets never print:
passwords show as `***` in every error, log and audit line.

Also bounded, with no setting: media type `application/json` (or `+json`) only (`415`);
shard keys and record ids 1 to 256 bytes without NUL.
";

// ---------------------------------------------------------------------------------------
// The settings structs, as the page describes them.

/// A settings struct the page has a section for: where its source is, and its keys with
/// their values (`describe`, or serde for the structs that serialize).
trait Described: DeserializeOwned {
    const FILE: &'static str;
    fn described(&self) -> Value;
}

macro_rules! described {
    ($($ty:ty: $file:literal, $how:expr;)*) => {$(
        impl Described for $ty {
            const FILE: &'static str = $file;
            fn described(&self) -> Value {
                ($how)(self)
            }
        }
    )*};
}

described! {
    ServerSettings: "api-router/src/server/settings.rs", ServerSettings::describe;
    AuthSettings: "api-router/src/server/settings.rs", AuthSettings::describe;
    LimitsSettings: "api-router/src/server/settings.rs", LimitsSettings::describe;
    CorsSettings: "api-router/src/edge/cors/settings.rs", CorsSettings::describe;
    TlsSettings: "api-router/src/server/tls.rs", TlsSettings::describe;
    TracingSettings: "telemetry/src/settings.rs", serialized::<TracingSettings>;
    AnalyticsConfig: "analytics/src/recording/config.rs", serialized::<AnalyticsConfig>;
    BalancerSettings: "control-plane/src/moves/auto_balance/settings.rs", serialized::<BalancerSettings>;
    DatabaseSettings: "shard-manager/src/config/sections.rs", DatabaseSettings::describe;
    RoutingSettings: "shard-manager/src/routing/settings.rs", serialized::<RoutingSettings>;
    RangeSettings: "shard-manager/src/routing/settings.rs", serialized::<RangeSettings>;
    TableSettings: "shard-manager/src/config/sections.rs", TableSettings::describe;
    ShardSettings: "shard-manager/src/config/sections.rs", ShardSettings::describe;
    ReplicationSettings: "shard-manager/src/config/sections.rs", ReplicationSettings::describe;
    CacheSettings: "shard-manager/src/config/sections.rs", CacheSettings::describe;
    MetadataSettings: "shard-manager/src/config/sections.rs", MetadataSettings::describe;
    MovesSettings: "shard-manager/src/config/sections.rs", MovesSettings::describe;
    ChangesSettings: "shard-manager/src/config/sections.rs", ChangesSettings::describe;
    FailoverSettings: "shard-manager/src/config/sections.rs", FailoverSettings::describe;
    BackupSettings: "shard-manager/src/config/sections.rs", BackupSettings::describe;
}

fn serialized<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("settings serialize")
}

/// One section type: its source, its values in the defaults (an object, an array of
/// objects for `[[...]]`, null when absent), and its values from a TOML table.
struct Kind {
    name: &'static str,
    file: &'static str,
    loaded: fn(&Settings) -> Value,
    from_toml: fn(&str) -> Result<Value, String>,
}

fn kind<T: Described>(name: &'static str, loaded: fn(&Settings) -> Value) -> Kind {
    Kind {
        name,
        file: T::FILE,
        loaded,
        from_toml: |text| {
            config::from_toml::<T>(text)
                .map(|t| t.described())
                .map_err(|e| e.to_string())
        },
    }
}

fn each<T: Described>(list: &[T]) -> Value {
    Value::Array(list.iter().map(Described::described).collect())
}

/// Every section type, by its Rust name. A field whose type is none of these and no
/// scalar or list the page knows fails the test, so no section is left out silently.
fn kinds() -> Vec<Kind> {
    vec![
        kind::<ServerSettings>("ServerSettings", |s| s.server.described()),
        kind::<CorsSettings>("CorsSettings", |s| s.server.cors.described()),
        kind::<TlsSettings>("TlsSettings", |s| {
            s.server
                .tls
                .as_ref()
                .map_or(Value::Null, Described::described)
        }),
        kind::<AnalyticsConfig>("AnalyticsConfig", |s| s.analytics.described()),
        kind::<BalancerSettings>("BalancerSettings", |s| s.balancer.described()),
        kind::<AuthSettings>("AuthSettings", |s| s.auth.described()),
        kind::<LimitsSettings>("LimitsSettings", |s| s.limits.described()),
        kind::<TracingSettings>("TracingSettings", |s| s.tracing.described()),
        kind::<DatabaseSettings>("DatabaseSettings", |s| s.cluster.database.described()),
        kind::<RoutingSettings>("RoutingSettings", |s| s.cluster.routing.described()),
        kind::<RangeSettings>("RangeSettings", |s| each(&s.cluster.routing.ranges)),
        kind::<TableSettings>("TableSettings", |s| s.cluster.tables.described()),
        kind::<ShardSettings>("ShardSettings", |s| each(&s.cluster.shards)),
        kind::<ReplicationSettings>("ReplicationSettings", |s| s.cluster.replication.described()),
        kind::<CacheSettings>("CacheSettings", |s| s.cluster.cache.described()),
        kind::<MetadataSettings>("MetadataSettings", |s| s.cluster.metadata.described()),
        kind::<MovesSettings>("MovesSettings", |s| s.cluster.moves.described()),
        kind::<ChangesSettings>("ChangesSettings", |s| s.cluster.changes.described()),
        kind::<FailoverSettings>("FailoverSettings", |s| s.cluster.failover.described()),
        kind::<BackupSettings>("BackupSettings", |s| s.cluster.backup.described()),
    ]
}

/// The enums a key may take, with the names serde reads.
fn enums() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("SslMode", variants::<SslMode>()),
        ("Balance", variants::<Balance>()),
        ("ShardFollows", variants::<ShardFollows>()),
        ("Strategy", variants::<Strategy>()),
        ("OtlpProtocol", variants::<OtlpProtocol>()),
    ]
}

// ---------------------------------------------------------------------------------------
// Reading a struct from its source.

#[derive(Debug)]
struct Field {
    name: String,
    ty: String,
    doc: String,
    serde: String,
}

impl Field {
    fn has(&self, attr: &str) -> bool {
        self.serde
            .split([',', '(', ')', ' ', '='])
            .any(|word| word == attr)
    }
}

struct Struct {
    doc: String,
    all_default: bool,
    fields: Vec<Field>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The struct `name` in `file`: its `///` lines, whether `#[serde(default)]` covers it,
/// and its `pub` fields with their `///` lines and serde attributes.
fn parse_struct(file: &str, name: &str) -> Struct {
    let text = std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (mut doc, mut serde) = (Vec::new(), String::new());
    let mut lines = text.lines();
    let mut found = None;
    for line in lines.by_ref() {
        let line = line.trim();
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_owned());
        } else if line.starts_with("#[serde(") {
            serde.push_str(line);
        } else if line.starts_with(&format!("pub struct {name} ")) {
            // The first paragraph: the rest is for the code's readers.
            let first = doc.iter().position(|l| l.is_empty()).unwrap_or(doc.len());
            found = Some(Struct {
                doc: prose(&doc[..first]),
                all_default: serde.contains("#[serde(default"),
                fields: Vec::new(),
            });
            break;
        } else if !line.starts_with("#[") {
            // Anything but an attribute ends the header a struct's `///` lines are in.
            doc.clear();
            serde.clear();
        }
    }
    let mut st = found.unwrap_or_else(|| panic!("no `pub struct {name}` in {file}"));
    let (mut doc, mut serde) = (Vec::new(), String::new());
    for line in lines {
        let line = line.trim();
        if line == "}" {
            return st;
        }
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_owned());
        } else if line.starts_with("#[serde(") {
            serde.push_str(line);
        } else if let Some(field) = line.strip_prefix("pub ") {
            let (field_name, ty) = field
                .split_once(": ")
                .unwrap_or_else(|| panic!("{file}: {name}: cannot read field line {line:?}"));
            let ty = ty
                .strip_suffix(',')
                .unwrap_or_else(|| panic!("{file}: {name}: a field's type on one line: {line:?}"));
            st.fields.push(Field {
                name: field_name.to_owned(),
                ty: ty.to_owned(),
                doc: prose(&doc),
                serde: std::mem::take(&mut serde),
            });
            doc.clear();
        } else if !line.starts_with("//") && !line.starts_with("#[") && !line.is_empty() {
            panic!("{file}: {name}: unexpected line {line:?} (fields are `pub`)");
        }
    }
    panic!("{file}: {name}: no closing brace")
}

/// `///` lines as one paragraph of Markdown for a table cell: rustdoc's links keep their
/// text and lose their targets, `|` is escaped.
fn prose(lines: &[String]) -> String {
    let text = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let (mut out, mut rest) = (String::new(), text.as_str());
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let opened = &rest[start + 1..];
        let Some(close) = opened.find(']') else {
            out.push('[');
            rest = opened;
            continue;
        };
        let (inner, tail) = (&opened[..close], &opened[close + 1..]);
        match tail
            .strip_prefix('(')
            .and_then(|t| t.find(')').map(|p| &t[p + 1..]))
        {
            // [text](target)
            Some(after) => {
                out.push_str(inner);
                rest = after;
            }
            // [`Item`]
            None if inner.len() > 1 && inner.starts_with('`') && inner.ends_with('`') => {
                out.push_str(inner);
                rest = tail;
            }
            // an ordinary bracket: `["*"]`
            None => {
                out.push('[');
                rest = opened;
            }
        }
    }
    out.push_str(rest);
    out.replace('|', "\\|")
}

// ---------------------------------------------------------------------------------------
// The sections, from the root `Settings` down.

struct Section {
    /// `server`, `server.cors`, `shards`.
    path: String,
    kind: &'static str,
    doc: String,
    /// `[[path]]`: a list of tables.
    array: bool,
    keys: Vec<Field>,
    /// The keys' values: from the defaults, or (a list or an absent section) those a
    /// table with only its required keys gets.
    values: Value,
    /// Keys a table must give (no default): shown as required.
    required: BTreeSet<String>,
}

fn strip<'a>(ty: &'a str, wrapper: &str) -> Option<&'a str> {
    ty.strip_prefix(wrapper)?.strip_suffix('>')
}

fn sections(defaults: &Settings, problems: &mut Vec<String>) -> Vec<Section> {
    let kinds = kinds();
    let mut out = Vec::new();
    let root = parse_struct("api-router/src/server/settings.rs", "Settings");
    let mut fields = Vec::new();
    for f in root.fields {
        if f.has("flatten") {
            let file = if f.ty == "ClusterSettings" {
                "shard-manager/src/config/mod.rs"
            } else {
                panic!("Settings flattens {}: say where it is", f.ty)
            };
            fields.extend(parse_struct(file, &f.ty).fields);
        } else {
            fields.push(f);
        }
    }
    for f in fields {
        walk(&kinds, defaults, "", f, &mut out, problems);
    }
    out
}

/// The section that field `f` of the section at `parent` opens, then its own sections.
fn walk(
    kinds: &[Kind],
    defaults: &Settings,
    parent: &str,
    f: Field,
    out: &mut Vec<Section>,
    problems: &mut Vec<String>,
) {
    let path = if parent.is_empty() {
        f.name.clone()
    } else {
        format!("{parent}.{}", f.name)
    };
    let (ty, array) = match strip(&f.ty, "Vec<") {
        Some(inner) => (inner, true),
        None => (strip(&f.ty, "Option<").unwrap_or(&f.ty), false),
    };
    let Some(kind) = kinds.iter().find(|k| k.name == ty) else {
        problems.push(format!(
            "section `{path}` has type {ty}, which kinds() does not list"
        ));
        return;
    };
    let st = parse_struct(kind.file, kind.name);
    let is_section = |field: &Field| {
        let inner = strip(&field.ty, "Vec<")
            .or_else(|| strip(&field.ty, "Option<"))
            .unwrap_or(&field.ty);
        kinds.iter().any(|k| k.name == inner)
    };
    let (children, keys): (Vec<Field>, Vec<Field>) = st
        .fields
        .into_iter()
        .filter(|k| !k.has("skip"))
        .partition(|k| is_section(k));
    let mut required: BTreeSet<String> = keys
        .iter()
        .filter(|k| !st.all_default && !k.has("default") && strip(&k.ty, "Option<").is_none())
        .map(|k| k.name.clone())
        .collect();
    let loaded = (kind.loaded)(defaults);
    let values = if array || loaded.is_null() {
        // A table with only its required keys, each the zero of its type.
        let table: String = keys
            .iter()
            .filter(|k| required.contains(&k.name))
            .map(|k| format!("{} = {}\n", k.name, zero(&k.ty)))
            .collect();
        match (kind.from_toml)(&table) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("[{path}] from its required keys alone: {e}"));
                Value::Null
            }
        }
    } else {
        // The defaults give every key a value: config/default.toml the required ones.
        required.clear();
        loaded
    };
    let described: BTreeSet<String> = values
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let section_names: BTreeSet<String> = children.iter().map(|c| c.name.clone()).collect();
    let fields: BTreeSet<String> = keys.iter().map(|k| k.name.clone()).collect();
    let described: BTreeSet<String> = described.difference(&section_names).cloned().collect();
    if described != fields {
        problems.push(format!(
            "{}'s describe and its fields differ: fields only {:?}, describe only {:?} ({})",
            kind.name,
            fields.difference(&described).collect::<Vec<_>>(),
            described.difference(&fields).collect::<Vec<_>>(),
            kind.file
        ));
    }
    for k in &keys {
        if k.doc.is_empty() {
            problems.push(format!(
                "{path}.{} has no `///` line ({})",
                k.name, kind.file
            ));
        }
    }
    out.push(Section {
        path: path.clone(),
        kind: kind.name,
        doc: if st.doc.is_empty() { f.doc } else { st.doc },
        array,
        keys,
        values,
        required,
    });
    for child in children {
        walk(kinds, defaults, &path, child, out, problems);
    }
}

/// A value of type `ty` for a required key of a table built to read its defaults.
fn zero(ty: &str) -> &'static str {
    match ty {
        "bool" => "false",
        "String" | "PathBuf" | "std::path::PathBuf" | "SecretString" => "\"\"",
        t if t.starts_with("Vec<") => "[]",
        _ => "0",
    }
}

// ---------------------------------------------------------------------------------------
// The page.

/// What a key of Rust type `ty` is written as.
fn toml_type(ty: &str, enums: &[(&str, Vec<&str>)]) -> Option<String> {
    if let Some(inner) = strip(ty, "Option<") {
        return toml_type(inner, enums);
    }
    if let Some(inner) = strip(ty, "Vec<") {
        let each = match toml_type(inner, enums)?.as_str() {
            "integer" => "integers".to_owned(),
            "string" => "strings".to_owned(),
            other => format!("{other} each"),
        };
        return Some(format!("list of {each}"));
    }
    Some(match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "integer".into(),
        "f32" | "f64" => "float".into(),
        "bool" => "boolean".into(),
        "String" => "string".into(),
        "SecretString" => "string (secret)".into(),
        "PathBuf" | "std::path::PathBuf" => "path".into(),
        _ => {
            let (_, names) = enums.iter().find(|(name, _)| *name == ty)?;
            let names: Vec<String> = names.iter().map(|n| format!("`\"{n}\"`")).collect();
            names.join(", ")
        }
    })
}

/// A value as TOML.
fn toml(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn env_var(section: &Section, key: &Field) -> String {
    let dotted = format!("{}.{}", section.path, key.name);
    let list = strip(&key.ty, "Vec<").is_some();
    if section.array || (list && !ENV_LIST_KEYS.contains(&dotted.as_str())) {
        return "file only".into();
    }
    let var = format!("SHARDGATE__{}", dotted.replace('.', "__").to_uppercase());
    if list {
        format!("`{var}` (comma-separated)")
    } else {
        format!("`{var}`")
    }
}

fn render(sections: &[Section], problems: &mut Vec<String>) -> String {
    let enums = enums();
    let mut page = format!(
        "# Configuration reference\n\n\
         <!-- Generated from the settings structs and their `///` lines; edit those, then\n     \
         run `{REGENERATE}`. -->\n\n{PROLOGUE}"
    );
    for s in sections {
        let depth = if s.path.contains('.') { "###" } else { "##" };
        let brackets = if s.array {
            format!("[[{}]]", s.path)
        } else {
            format!("[{}]", s.path)
        };
        page.push_str(&format!("\n{depth} `{brackets}`\n\n"));
        if !s.doc.is_empty() {
            page.push_str(&format!("{}\n\n", s.doc));
        }
        page.push_str("| key | type | default | environment | what it is for |\n");
        page.push_str("|---|---|---|---|---|\n");
        for k in &s.keys {
            let ty = toml_type(&k.ty, &enums).unwrap_or_else(|| {
                problems.push(format!(
                    "{}.{} has type {}: say how the page writes it (toml_type, enums)",
                    s.path, k.name, k.ty
                ));
                k.ty.clone()
            });
            let default = if s.required.contains(&k.name) {
                "required".to_owned()
            } else {
                match s.values.get(&k.name) {
                    None | Some(Value::Null) => "unset".to_owned(),
                    Some(v) => format!("`{}`", toml(v).replace('|', "\\|")),
                }
            };
            page.push_str(&format!(
                "| `{}` | {ty} | {default} | {} | {} |\n",
                k.name,
                env_var(s, k),
                k.doc
            ));
        }
    }
    page
}

/// Every key as the strict check reads it: `section.key`, a list of tables `section[]`.
fn key_list(sections: &[Section]) -> String {
    let mut text = String::from(
        "# Every configuration key a binary reads, one a line; a list of tables is\n\
         # `section[]`. Generated from the settings structs with\n",
    );
    text.push_str(&format!("# `{REGENERATE}`.\n"));
    let mut keys = Vec::new();
    for s in sections {
        // Each enclosing section's own `[]` when it is a list of tables.
        let parts: Vec<&str> = s.path.split('.').collect();
        let bracketed: Vec<String> = (1..=parts.len())
            .map(|n| {
                let prefix = parts[..n].join(".");
                let array = sections.iter().any(|o| o.path == prefix && o.array);
                format!("{}{}", parts[n - 1], if array { "[]" } else { "" })
            })
            .collect();
        let path = bracketed.join(".");
        keys.extend(s.keys.iter().map(|k| format!("{path}.{}", k.name)));
    }
    keys.sort();
    for k in keys {
        text.push_str(&k);
        text.push('\n');
    }
    text
}

/// Writes `text` to `file` under UPDATE_REFERENCE, else fails when the file differs.
fn generated(file: &str, text: &str) {
    let path = repo().join(file);
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, text).expect("write the generated file");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != text {
        let line = on_disk
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(text.lines().count()));
        panic!(
            "{file} is not what the settings structs say (first difference at line {}:\n  file: {:?}\n  code: {:?}).\n\
             Regenerate it: {REGENERATE}",
            line + 1,
            on_disk.lines().nth(line).unwrap_or(""),
            text.lines().nth(line).unwrap_or("")
        );
    }
}

/// The defaults as a TOML file, from what the sections describe: read back, it must give
/// the same settings as the defaults themselves.
fn described_toml(sections: &[Section], defaults: &Settings) -> String {
    let kinds = kinds();
    let mut text = String::new();
    for s in sections {
        let kind = kinds
            .iter()
            .find(|k| k.name == s.kind)
            .expect("listed kind");
        let loaded = (kind.loaded)(defaults);
        let tables = match &loaded {
            Value::Array(items) => items.clone(),
            Value::Null => continue,
            one => vec![one.clone()],
        };
        for table in tables {
            if s.array {
                text.push_str(&format!("[[{}]]\n", s.path));
            } else {
                text.push_str(&format!("[{}]\n", s.path));
            }
            for k in &s.keys {
                match table.get(&k.name) {
                    None | Some(Value::Null) => {}
                    Some(v) => text.push_str(&format!("{} = {}\n", k.name, toml(v))),
                }
            }
        }
    }
    text
}

#[test]
fn the_configuration_reference_is_the_code_s() {
    let defaults: Settings = config::from_toml(DEFAULT_CONFIG).expect("the built-in defaults load");
    let mut problems = Vec::new();
    let sections = sections(&defaults, &mut problems);
    let page = render(&sections, &mut problems);

    let described = described_toml(&sections, &defaults);
    match config::from_toml::<Settings>(&described) {
        Ok(back) => {
            let (back, real) = (format!("{back:#?}"), format!("{defaults:#?}"));
            let clean = |line: &str| line.trim().trim_end_matches(',').to_owned();
            let differ: Vec<String> = back
                .lines()
                .zip(real.lines())
                .filter(|(b, r)| b != r)
                .map(|(b, r)| format!("  described {}, the code's {}", clean(b), clean(r)))
                .collect();
            if !differ.is_empty() || back.lines().count() != real.lines().count() {
                problems.push(format!(
                    "a describe() shows a value other than the field's: read back, the page's \
                     defaults differ from the defaults:\n{}",
                    differ.join("\n")
                ));
            }
        }
        Err(e) => problems.push(format!(
            "the described defaults do not load: {e}\n{described}"
        )),
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    generated(PAGE, &page);
    generated(KEYS, &key_list(&sections));
}

#[test]
fn a_changed_default_changes_the_page() {
    let defaults: Settings = config::from_toml(DEFAULT_CONFIG).expect("the built-in defaults load");
    let mut problems = Vec::new();
    let sections = sections(&defaults, &mut problems);
    let page = render(&sections, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        page.contains(
            "| `max_body_bytes` | integer | `1048576` | `SHARDGATE__SERVER__MAX_BODY_BYTES` |"
        ),
        "a key from default.toml"
    );
    assert!(
        page.contains("| `hsts_max_age_secs` | integer | `31536000` | `SHARDGATE__SERVER__TLS__HSTS_MAX_AGE_SECS` |"),
        "a serde default of a section that is absent by default"
    );
    assert!(page.contains("| `primary` | string | required | file only |"));
    let keys = key_list(&sections);
    for key in [
        "database.pool_max_size",
        "server.tls.cert_path",
        "shards[].primary",
        "routing.ranges[].shard",
        "tracing.endpoint",
    ] {
        assert!(keys.lines().any(|l| l == key), "{key} not in:\n{keys}");
    }
    assert!(
        !keys.lines().any(|l| l == "server.tls" || l == "shards"),
        "{keys}"
    );
    assert!(page.contains(
        "| `sslmode` | `\"disable\"`, `\"require\"`, `\"verify-full\"` | `\"disable\"` |"
    ));

    let mut other: Settings = config::from_toml(
        &DEFAULT_CONFIG.replace("max_body_bytes = 1048576", "max_body_bytes = 2097152"),
    )
    .unwrap();
    other.cluster.cache.ttl_secs = 7;
    let sections = self::sections(&other, &mut problems);
    let changed = render(&sections, &mut problems);
    assert!(changed.contains("| `max_body_bytes` | integer | `2097152` |"));
    assert!(changed.contains("| `ttl_secs` | integer | `7` |"));
    assert_ne!(changed, page);
}

// ---------------------------------------------------------------------------------------
// An enum's names, as serde reads them: a deserializer that only asks.

#[derive(Debug)]
struct Names(Vec<&'static str>);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Names {}

impl serde::de::Error for Names {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Names(Vec::new())
    }
}

struct AskNames;

impl<'de> serde::Deserializer<'de> for AskNames {
    type Error = Names;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Names> {
        Err(Names(Vec::new()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Names> {
        Err(Names(variants.to_vec()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

fn variants<T: DeserializeOwned>() -> Vec<&'static str> {
    match T::deserialize(AskNames) {
        Err(Names(names)) if !names.is_empty() => names,
        _ => panic!("{} is not an enum", std::any::type_name::<T>()),
    }
}
