//! The plan as people read it: a table per strategy and, for the configured strategy, a
//! from → to matrix of the records that move.

use std::fmt::Write;

use super::{Amount, Plan};
use shard_manager::routing::ShardId;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn amount(a: Amount) -> String {
    format!("{} ({})", thousands(a.records), human_bytes(a.bytes))
}

/// The plan as a text table, ready to print.
pub fn render(plan: &Plan) -> String {
    let c = &plan.counts;
    let mut out = String::new();
    let scope = plan
        .table
        .as_deref()
        .map_or("all tables".to_owned(), |t| format!("table {t:?}"));
    let _ = writeln!(
        out,
        "Adding {} to {} shards: {} records, {} in {} shard keys ({scope})\n",
        ShardId(c.shards),
        c.shards,
        thousands(c.total.records),
        human_bytes(c.total.bytes),
        thousands(c.keys),
    );
    let header = [
        "strategy",
        "records moved",
        "%",
        "bytes moved",
        "%",
        "to new shard",
        "between old shards",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for t in &c.strategies {
        let mark = if t.configured { " *" } else { "" };
        rows.push(vec![
            format!("{}{mark}", t.label),
            thousands(t.moved.records),
            percent(t.moved.records, c.total.records),
            human_bytes(t.moved.bytes),
            percent(t.moved.bytes, c.total.bytes),
            amount(t.to_new_shard),
            amount(t.between_old_shards),
        ]);
    }
    out.push_str(&grid(&rows));
    let _ = writeln!(out, "* configured strategy ({})\n", plan.configured);
    out.push_str(&flows(plan));
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Where the configured strategy's moving records go, rows from, columns to.
fn flows(plan: &Plan) -> String {
    let c = &plan.counts;
    if c.flows.is_empty() {
        return format!("{}: no record moves\n\n", plan.configured);
    }
    let mut out = format!("{}: records moving from → to\n", plan.configured);
    let mut rows = vec![std::iter::once("from \\ to".to_owned())
        .chain((0..=c.shards).map(|s| ShardId(s).to_string()))
        .collect::<Vec<_>>()];
    for from in 0..c.shards {
        let mut row = vec![ShardId(from).to_string()];
        for to in 0..=c.shards {
            let cell = c
                .flows
                .iter()
                .find(|f| f.from == ShardId(from) && f.to == ShardId(to))
                .map_or("-".to_owned(), |f| amount(f.amount));
            row.push(cell);
        }
        rows.push(row);
    }
    out.push_str(&grid(&rows));
    out.push('\n');
    out
}

/// Left-aligned first column, right-aligned others, two spaces between.
fn grid(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "{cell:<w$}", w = width[0]);
            } else {
                let _ = write!(out, "  {cell:>w$}", w = width[i]);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(percent(1, 3), "33.3%");
    }
}
