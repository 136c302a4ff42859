//! How an exported record is written: one NDJSON line, or one CSV row (RFC 4180: a
//! header row, CRLF line ends, a field quoted when it holds a comma, a quote, CR or
//! LF, its quotes doubled). Both carry the same fields, in the same order:
//! `shard_key`, `id`, `version`, `updated_at` (RFC 3339, UTC, microseconds) and `data`
//! (the record's JSON document as stored, every digit kept; in CSV one column).
//!
//! CSV is opened by spreadsheets, which run a cell that starts with `=`, `+`, `-` or
//! `@` (and, in some, a tab or a carriage return) as a formula: a shard key
//! `=HYPERLINK(...)` would be a link in the reader's sheet. So by default
//! ([`CsvCells::Safe`]) every CSV cell that starts with one of those characters gets a
//! leading `'` (OWASP's advice on CSV injection), which a spreadsheet shows as text and
//! a program can strip; [`CsvCells::Raw`] writes the cells as stored, for programs that
//! read the file. A `data` cell always starts with `{` (a document is a JSON object), so
//! a number inside it, negative or not, is never touched. NDJSON is never changed:
//! spreadsheets do not run JSON, and a JSON string keeps its value whatever it starts
//! with.

use chrono::SecondsFormat;

use crate::store::Record;

/// An export's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
    /// Comma-separated values with a header row (`text/csv`).
    Csv(CsvCells),
}

/// What a CSV export does with a cell a spreadsheet would run as a formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvCells {
    /// A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
    /// written with a leading `'`, so a spreadsheet shows it instead of running it.
    #[default]
    Safe,
    /// Every cell as stored (`raw=true`, `--raw`): for programs, not spreadsheets.
    Raw,
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The CSV header row.
pub const CSV_HEADER: &str = "shard_key,id,version,updated_at,data\r\n";

impl Format {
    /// `ndjson` or `csv` (the CLI's `--format`); CSV with [`CsvCells::Safe`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ndjson" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv(CsvCells::Safe)),
            _ => None,
        }
    }

    /// The same format writing every cell as stored: CSV with [`CsvCells::Raw`];
    /// NDJSON, which has nothing to neutralise, unchanged.
    pub fn raw(self) -> Self {
        match self {
            Self::Ndjson => Self::Ndjson,
            Self::Csv(_) => Self::Csv(CsvCells::Raw),
        }
    }

    /// The media type of the output.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv(_) => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first record.
    pub fn header(self) -> &'static str {
        match self {
            Self::Ndjson => "",
            Self::Csv(_) => CSV_HEADER,
        }
    }

    /// Appends one record, with its line end.
    pub fn write(self, record: &Record, out: &mut Vec<u8>) {
        let updated = record
            .updated_at
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        match self {
            Self::Ndjson => {
                out.extend_from_slice(b"{\"shard_key\":");
                json_string(&record.shard_key, out);
                out.extend_from_slice(b",\"id\":");
                json_string(&record.id, out);
                out.extend_from_slice(
                    format!(
                        ",\"version\":{},\"updated_at\":\"{updated}\",\"data\":",
                        record.version
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(record.data.get().as_bytes());
                out.extend_from_slice(b"}\n");
            }
            Self::Csv(cells) => {
                let version = record.version.to_string();
                let row = [
                    record.shard_key.as_str(),
                    record.id.as_str(),
                    &version,
                    &updated,
                    record.data.get(),
                ];
                for (i, cell) in row.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    csv_cell(cell, cells, out);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn json_string(text: &str, out: &mut Vec<u8>) {
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A CSV cell: with a leading `'` when `cells` is [`CsvCells::Safe`] and the text
/// starts like a formula, then quoted as RFC 4180 asks.
pub fn csv_cell(text: &str, cells: CsvCells, out: &mut Vec<u8>) {
    if cells == CsvCells::Safe && text.starts_with(FORMULA_STARTS) {
        let mut guarded = String::with_capacity(text.len() + 1);
        guarded.push('\'');
        guarded.push_str(text);
        csv_field(&guarded, out);
        return;
    }
    csv_field(text, out);
}

/// A CSV field, quoted when RFC 4180 asks for it.
pub fn csv_field(text: &str, out: &mut Vec<u8>) {
    if !text.contains([',', '"', '\r', '\n']) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    for part in text.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RawJson;
    use chrono::{TimeZone, Utc};

    fn record(key: &str, id: &str, data: serde_json::Value) -> Record {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
        Record {
            table_name: "users".into(),
            shard_key: key.into(),
            id: id.into(),
            slot: 7,
            data: RawJson::from_value(&data),
            version: 42,
            created_at: at,
            updated_at: at,
        }
    }

    fn field(text: &str) -> String {
        let mut out = Vec::new();
        csv_field(text, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_fields_are_quoted_only_when_rfc_4180_asks() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(field("\""), "\"\"\"\"");
        assert_eq!(field(""), "");
    }

    fn cell(text: &str, cells: CsvCells) -> String {
        let mut out = Vec::new();
        csv_cell(text, cells, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn csv_row(format: Format, r: &Record) -> String {
        let mut out = Vec::new();
        format.write(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_cell_starting_like_a_formula_gets_a_leading_quote() {
        let safe = CsvCells::Safe;
        assert_eq!(cell("=1+1", safe), "'=1+1");
        assert_eq!(cell("+1", safe), "'+1");
        assert_eq!(cell("-1", safe), "'-1");
        assert_eq!(cell("@SUM(A1)", safe), "'@SUM(A1)");
        assert_eq!(cell("\tx", safe), "'\tx");
        // Quoted as RFC 4180 asks, after the quote mark was added.
        assert_eq!(cell("\rx", safe), "\"'\rx\"");
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"y\")", safe),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
    }

    #[test]
    fn a_cell_that_only_holds_a_formula_character_later_is_left_alone() {
        let safe = CsvCells::Safe;
        assert_eq!(cell("a=1", safe), "a=1");
        assert_eq!(cell("user-1", safe), "user-1");
        assert_eq!(cell(" =1", safe), " =1");
        assert_eq!(cell("'=1", safe), "'=1");
        assert_eq!(cell("", safe), "");
        assert_eq!(cell("two\n=lines", safe), "\"two\n=lines\"");
    }

    #[test]
    fn raw_cells_are_written_as_stored() {
        for text in ["=1+1", "+1", "-1", "@x", "\tx"] {
            assert_eq!(cell(text, CsvCells::Raw), text);
        }
        assert_eq!(cell("\rx", CsvCells::Raw), "\"\rx\"");
    }

    #[test]
    fn every_column_of_a_row_is_guarded_but_a_document_never_starts_like_a_formula() {
        let r = record("=cmd", "-1", serde_json::json!({"n": -5, "f": "=1+1"}));
        assert_eq!(
            csv_row(Format::Csv(CsvCells::Safe), &r),
            "'=cmd,'-1,42,2026-11-25T14:00:00.000000Z,\"{\"\"f\"\":\"\"=1+1\"\",\"\"n\"\":-5}\"\r\n"
        );
        assert_eq!(
            csv_row(Format::Csv(CsvCells::Raw), &r),
            "=cmd,-1,42,2026-11-25T14:00:00.000000Z,\"{\"\"f\"\":\"\"=1+1\"\",\"\"n\"\":-5}\"\r\n"
        );
        // The version and the time are cells too (a negative version would be guarded).
        let mut negative = r.clone();
        negative.version = -3;
        assert!(csv_row(Format::Csv(CsvCells::Safe), &negative).contains(",'-3,"));
    }

    #[test]
    fn ndjson_keeps_every_value_as_stored_whatever_it_starts_with() {
        let r = record("=cmd", "@id", serde_json::json!({"n": -5}));
        for format in [Format::Ndjson, Format::Ndjson.raw()] {
            let line: serde_json::Value =
                serde_json::from_str(csv_row(format, &r).trim_end()).unwrap();
            assert_eq!(line["shard_key"], "=cmd");
            assert_eq!(line["id"], "@id");
            assert_eq!(line["data"], serde_json::json!({"n": -5}));
        }
    }

    #[test]
    fn csv_is_safe_unless_asked_raw() {
        assert_eq!(Format::parse("csv"), Some(Format::Csv(CsvCells::Safe)));
        assert_eq!(
            Format::parse("csv").map(Format::raw),
            Some(Format::Csv(CsvCells::Raw))
        );
        assert_eq!(Format::Ndjson.raw(), Format::Ndjson);
    }

    #[test]
    fn a_csv_row_has_the_header_columns() {
        let mut out = Vec::new();
        Format::Csv(CsvCells::Safe).write(
            &record("k,1", "i\"d", serde_json::json!({"a": "x,y"})),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"k,1\",\"i\"\"d\",42,2026-11-25T14:00:00.000000Z,\"{\"\"a\"\":\"\"x,y\"\"}\"\r\n"
        );
    }

    #[test]
    fn an_ndjson_line_is_one_json_object() {
        let mut out = Vec::new();
        let r = record("user\n1", "id\"2", serde_json::json!({"n": 1}));
        Format::Ndjson.write(&r, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with('\n'));
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"shard_key": "user\n1", "id": "id\"2", "version": 42,
                "updated_at": "2026-11-25T14:00:00.000000Z", "data": {"n": 1}})
        );
    }
}
