//! How an exported record is written: one NDJSON line, or one CSV row (RFC 4180: a
//! header row, CRLF line ends, a field quoted when it holds a comma, a quote, CR or
//! LF, its quotes doubled). Both carry the same fields, in the same order:
//! `shard_key`, `id`, `version`, `updated_at` (RFC 3339, UTC, microseconds) and `data`
//! (the record's JSON document as stored, every digit kept; in CSV one column).

use chrono::SecondsFormat;

use crate::store::Record;

/// An export's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
    /// Comma-separated values with a header row (`text/csv`).
    Csv,
}

/// The CSV header row.
pub const CSV_HEADER: &str = "shard_key,id,version,updated_at,data\r\n";

impl Format {
    /// `ndjson` or `csv` (the CLI's `--format`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ndjson" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    /// The media type of the output.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first record.
    pub fn header(self) -> &'static str {
        match self {
            Self::Ndjson => "",
            Self::Csv => CSV_HEADER,
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
            Self::Csv => {
                csv_field(&record.shard_key, out);
                out.push(b',');
                csv_field(&record.id, out);
                out.extend_from_slice(format!(",{},{updated},", record.version).as_bytes());
                csv_field(record.data.get(), out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn json_string(text: &str, out: &mut Vec<u8>) {
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
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

    #[test]
    fn a_csv_row_has_the_header_columns() {
        let mut out = Vec::new();
        Format::Csv.write(
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
