//! Result columns to metric values and label values. Types are matched by name so an unfamiliar
//! column gives an error that says which cast to add, not a wrong number.

use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgRow, PgValueFormat, PgValueRef};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::{QueryError, QueryErrorKind};

fn decode_error(message: String) -> QueryError {
    QueryError { kind: QueryErrorKind::Decode, message, reach: super::Reach::Answered }
}

fn column_index(row: &PgRow, name: &str) -> Result<usize, QueryError> {
    row.columns()
        .iter()
        .position(|c| c.name() == name)
        .ok_or_else(|| decode_error(format!("the result has no column `{name}`")))
}

/// A numeric column as f64; `None` for SQL NULL (the row is skipped for that metric).
pub fn number(row: &PgRow, name: &str) -> Result<Option<f64>, QueryError> {
    let i = column_index(row, name)?;
    let raw = row.try_get_raw(i).map_err(QueryError::from)?;
    if raw.is_null() {
        return Ok(None);
    }
    let type_name = raw.type_info().name().to_string();
    let value = match type_name.as_str() {
        "INT8" => row.try_get::<i64, _>(i)? as f64,
        "INT4" => f64::from(row.try_get::<i32, _>(i)?),
        "INT2" => f64::from(row.try_get::<i16, _>(i)?),
        "FLOAT8" => row.try_get::<f64, _>(i)?,
        "FLOAT4" => f64::from(row.try_get::<f32, _>(i)?),
        "BOOL" => f64::from(u8::from(row.try_get::<bool, _>(i)?)),
        // `sum()` of integers is numeric: the nearest f64, as a `::float8` cast would give.
        "NUMERIC" => numeric_text(&raw, name)?
            .parse::<f64>()
            .map_err(|_| decode_error(format!("column `{name}` (NUMERIC) is not a number")))?,
        other => {
            return Err(decode_error(format!(
                "column `{name}` is {other}; cast it in the query (`::float8`) to export it"
            )));
        }
    };
    Ok(Some(value))
}

/// A label column as text, written as PostgreSQL writes it. Text-like and enum columns are read as
/// they are; NULL is "".
pub fn label(row: &PgRow, name: &str) -> Result<String, QueryError> {
    let i = column_index(row, name)?;
    let raw = row.try_get_raw(i).map_err(QueryError::from)?;
    if raw.is_null() {
        return Ok(String::new());
    }
    let type_name = raw.type_info().name().to_string();
    match type_name.as_str() {
        "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" | "CHAR" | "CITEXT" => Ok(row.try_get::<String, _>(i)?),
        "BOOL" => Ok(row.try_get::<bool, _>(i)?.to_string()),
        "INT8" => Ok(row.try_get::<i64, _>(i)?.to_string()),
        "INT4" => Ok(row.try_get::<i32, _>(i)?.to_string()),
        "INT2" => Ok(row.try_get::<i16, _>(i)?.to_string()),
        "OID" => Ok(row.try_get::<Oid, _>(i)?.0.to_string()),
        "FLOAT8" => Ok(float8_text(row.try_get::<f64, _>(i)?)),
        "FLOAT4" => Ok(float4_text(row.try_get::<f32, _>(i)?)),
        "UUID" => uuid_text(&raw, name),
        "NUMERIC" => numeric_text(&raw, name),
        _ => {
            // Enum values travel as their label text, whatever the enum's name. Anything else
            // (a date, an array, json) is not guessed at: its bytes are not text.
            // Enums and domains over text are user-defined types (OIDs from 16384 on).
            let info = raw.type_info();
            let is_enum = matches!(info.kind(), sqlx::postgres::PgTypeKind::Enum(_));
            let user_defined = info.oid().is_some_and(|oid| oid.0 >= 16384);
            let text = if is_enum || user_defined { row.try_get_unchecked::<String, _>(i).ok() } else { None };
            text.ok_or_else(|| {
                decode_error(format!("label column `{name}` is {type_name}; cast it to text in the query (`::text`)"))
            })
        }
    }
}

/// Floats the way PostgreSQL prints them (shortest exact digits): `1.5`, `-2`, `1e+20`,
/// `1.5e-05`, `NaN`, `Infinity`. Scientific below 1e-4 and from 10^`digits` on, `digits` being 15
/// for float8 and 6 for float4, as PostgreSQL does.
fn float_text(shortest: String, scientific: String, digits: i32, nan: bool, infinite: Option<bool>) -> String {
    if nan {
        return "NaN".into();
    }
    match infinite {
        Some(true) => return "-Infinity".into(),
        Some(false) => return "Infinity".into(),
        None => {}
    }
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return shortest };
    let Ok(exponent) = exponent.parse::<i32>() else { return shortest };
    if exponent < -4 || exponent >= digits {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        shortest
    }
}

fn float8_text(v: f64) -> String {
    let infinite = v.is_infinite().then_some(v < 0.0);
    float_text(v.to_string(), format!("{v:e}"), 15, v.is_nan(), infinite)
}

fn float4_text(v: f32) -> String {
    let infinite = v.is_infinite().then_some(v < 0.0);
    float_text(v.to_string(), format!("{v:e}"), 6, v.is_nan(), infinite)
}

fn bytes<'r>(raw: &PgValueRef<'r>, name: &str) -> Result<&'r [u8], QueryError> {
    raw.as_bytes().map_err(|_| decode_error(format!("column `{name}`: the value cannot be read")))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case.
fn uuid_text(raw: &PgValueRef<'_>, name: &str) -> Result<String, QueryError> {
    if raw.format() == PgValueFormat::Text {
        return bytes(raw, name).map(|b| String::from_utf8_lossy(b).into_owned());
    }
    let b = bytes(raw, name)?;
    if b.len() != 16 {
        return Err(decode_error(format!("column `{name}` (UUID) has {} bytes, not 16", b.len())));
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// NUMERIC's binary form (base-10000 digits, a weight, a sign and a display scale) as the decimal
/// text PostgreSQL would print: `12.50`, `-3`, `0.001`, `NaN`.
fn numeric_text(raw: &PgValueRef<'_>, name: &str) -> Result<String, QueryError> {
    if raw.format() == PgValueFormat::Text {
        return bytes(raw, name).map(|b| String::from_utf8_lossy(b).into_owned());
    }
    numeric_from_binary(bytes(raw, name)?)
        .ok_or_else(|| decode_error(format!("column `{name}` (NUMERIC) is not a valid numeric value")))
}

fn numeric_from_binary(b: &[u8]) -> Option<String> {
    let word = |i: usize| b.get(i..i + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digits: Vec<u16> = (0..ndigits).map(|d| word(8 + 2 * d)).collect::<Option<_>>()?;
    if digits.iter().any(|d| *d > 9999) || dscale > 16383 {
        return None;
    }
    // Digit group k stands for digits[k] * 10000^(weight - k).
    let group = |k: i64| -> u16 { usize::try_from(k).ok().and_then(|k| digits.get(k)).copied().unwrap_or(0) };
    let mut int_part = String::new();
    for k in 0..=weight.max(-1) {
        let g = group(k);
        if int_part.is_empty() {
            if g != 0 {
                int_part = g.to_string();
            }
        } else {
            int_part.push_str(&format!("{g:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut k = weight + 1;
    while frac.len() < dscale {
        frac.push_str(&format!("{:04}", group(k)));
        k += 1;
    }
    frac.truncate(dscale);
    let negative = sign == 0x4000 && (int_part != "0" || frac.chars().any(|c| c != '0'));
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&int_part);
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn binary(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].into_iter().chain(digits.iter().copied()) {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_binary_to_text() {
        assert_eq!(numeric_from_binary(&binary(2, 0, 0, 2, &[12, 5000])).unwrap(), "12.50");
        assert_eq!(numeric_from_binary(&binary(1, 1, 0x4000, 0, &[3])).unwrap(), "-30000");
        assert_eq!(numeric_from_binary(&binary(1, -1, 0, 3, &[10])).unwrap(), "0.001");
        assert_eq!(numeric_from_binary(&binary(0, 0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric_from_binary(&binary(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert!(numeric_from_binary(&[0, 1]).is_none());
    }

    proptest! {
        #[test]
        fn numeric_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = numeric_from_binary(&b);
        }
    }
}
