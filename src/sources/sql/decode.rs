//! Result columns to metric values and label values. Types are matched by name so an unfamiliar
//! column gives an error that says which cast to add, not a wrong number.

use sqlx::postgres::PgRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::{QueryError, QueryErrorKind};

fn decode_error(message: String) -> QueryError {
    QueryError { kind: QueryErrorKind::Decode, message }
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
        other => {
            return Err(decode_error(format!(
                "column `{name}` is {other}; cast it in the query (`::float8`) to export it"
            )));
        }
    };
    Ok(Some(value))
}

/// A label column as text. Text-like and enum columns are read as they are; NULL is "".
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
        _ => {
            // Enum values travel as their label text, whatever the enum's name.
            row.try_get_unchecked::<String, _>(i).map_err(|_| {
                decode_error(format!("label column `{name}` is {type_name}; cast it to text in the query"))
            })
        }
    }
}
