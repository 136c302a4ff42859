//! Which JSON numbers PostgreSQL's `jsonb` can hold. A document bound as the text the
//! client sent keeps every number's digits, and `jsonb` stores numbers as `numeric`,
//! whose display scale (digits after the decimal point, once the exponent is applied)
//! is at most 16,383: `1e-20000` or a fraction of 16,384 digits is valid JSON that the
//! shard would refuse ("value overflows numeric format"). serde_json reads such a
//! number as 0.0, so the check is made on the text, before the shard sees it.
//! (Too large the other way cannot pass serde_json, which refuses beyond 1.8e308.)

/// The largest display scale `numeric` holds (PostgreSQL's `NUMERIC_DSCALE_MAX`).
pub const MAX_SCALE: i64 = 0x3FFF;

/// A number of `text` (checked JSON) whose scale is past [`MAX_SCALE`], with that
/// scale; None when `jsonb` can hold every number.
pub(crate) fn too_fine(text: &str) -> Option<(&str, i64)> {
    // A scale past the limit needs a negative exponent or that many digits.
    if text.len() as i64 <= MAX_SCALE && !text.contains("e-") && !text.contains("E-") {
        return None;
    }
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i + 1),
            b'-' | b'0'..=b'9' => {
                let (end, scale) = number(b, i);
                if scale > MAX_SCALE {
                    return Some((&text[i..end], scale));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    None
}

/// Past the closing quote of a string whose contents start at `i`.
fn string_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

/// The end of the number starting at `i`, and its scale: fraction digits minus the
/// exponent (never below 0; the exponent saturates, far past any limit).
fn number(b: &[u8], mut i: usize) -> (usize, i64) {
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b[i] == b'-' {
        i += 1;
    }
    digits(&mut i);
    let mut fraction = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        fraction = digits(&mut i) as i64;
    }
    let mut exponent: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let negative = i < b.len() && b[i] == b'-';
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            exponent = (exponent * 10 + i64::from(b[i] - b'0')).min(1 << 40);
            i += 1;
        }
        if negative {
            exponent = -exponent;
        }
    }
    (i, (fraction - exponent).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_fraction_digits_after_the_exponent() {
        // The limits measured on PostgreSQL 15: 1.5e-16000 and a fraction of 16,383
        // digits are stored; 1e-16384 and a fraction of 16,384 digits are refused.
        assert_eq!(too_fine(r#"{"v":1.5e-16000}"#), None);
        assert_eq!(too_fine(r#"{"v":1e-16384}"#), Some(("1e-16384", 16384)));
        assert_eq!(too_fine(r#"{"v":1e-16383}"#), None);
        let digits = |n: usize| format!(r#"{{"v":0.{}1}}"#, "0".repeat(n - 1));
        assert_eq!(too_fine(&digits(16383)), None);
        assert_eq!(too_fine(&digits(16384)).map(|(_, s)| s), Some(16384));
        assert_eq!(
            too_fine(r#"[-2.5E-20000, 1]"#),
            Some(("-2.5E-20000", 20001))
        );
        assert_eq!(
            too_fine(r#"{"v":1e-99999999999999999999}"#).map(|(_, s)| s),
            Some(1 << 40)
        );
        // A positive exponent lowers the scale.
        assert_eq!(
            too_fine(&format!(r#"[0.{}1e20000]"#, "0".repeat(16383))),
            None
        );
    }

    #[test]
    fn numbers_inside_strings_are_text() {
        let long = format!(r#"{{"s":"1e-20000 \"0.{}1\"","n":-0}}"#, "0".repeat(20000));
        assert_eq!(too_fine(&long), None);
        assert_eq!(
            too_fine(r#"{"e-":"x\\","n":3e-20000}"#).map(|(_, s)| s),
            Some(20000)
        );
    }
}
