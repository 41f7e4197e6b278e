//! Rows into JSON objects, one function per database (the README's types table).
//!
//! jdbcSource's formats where it defines them (dates, times and timestamps; NULL
//! columns left out unless `includeNulls`), exact JSON elsewhere: numerics keep every
//! digit, 64-bit integers stay integers, binary is base64, JSON columns are JSON,
//! arrays are arrays.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::{Map, Number, Value};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::{PgRow, PgTypeKind, PgValueFormat, PgValueRef};
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

/// One row as a JSON object.
pub type JsonRow = Map<String, Value>;

/// jdbcSource's date format (`yyyy-MM-dd`).
pub fn date(d: NaiveDate) -> Value {
    Value::String(d.format("%Y-%m-%d").to_string())
}

/// jdbcSource's time format (`HH:mm:ss.SSSZ`), in UTC.
pub fn time(t: NaiveTime) -> Value {
    Value::String(t.format("%H:%M:%S%.3f+0000").to_string())
}

/// jdbcSource's timestamp format (`yyyy-MM-dd'T'HH:mm:ss.SSSZ`), in UTC.
pub fn timestamp(t: NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
}

/// A float as a JSON number, or its name (`NaN`, `Infinity`) as JSON has none.
pub fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// A decimal's text as an exact JSON number (every digit kept), or the text itself
/// when it is not a number (`NaN`, `Infinity`).
pub fn decimal(text: &str) -> Value {
    match Number::from_str(text) {
        Ok(n) => Value::Number(n),
        Err(_) => Value::String(text.to_owned()),
    }
}

/// Bytes as base64.
pub fn binary(bytes: &[u8]) -> Value {
    Value::String(data_encoding::BASE64.encode(bytes))
}

/// Bytes of a type the connector does not know: their text, or base64 if not UTF-8.
fn text_or_binary(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => binary(bytes),
    }
}

/// A value that could not be read: the reason, as a row cannot be half sent.
pub type ConvertError = String;

fn put(row: &mut JsonRow, name: &str, value: Option<Value>, nulls: bool) {
    match value {
        Some(v) => {
            row.insert(name.to_owned(), v);
        }
        None if nulls => {
            row.insert(name.to_owned(), Value::Null);
        }
        None => {}
    }
}

fn bad(column: &str, type_name: &str, e: impl std::fmt::Display) -> ConvertError {
    format!("column {column} ({type_name}): {e}")
}

// ---------------------------------------------------------------- PostgreSQL

/// PostgreSQL's binary NUMERIC (base-10000 digits) as decimal text, every digit kept.
pub fn pg_numeric_binary(b: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])) };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let mut digits = Vec::with_capacity(ndigits);
    for k in 0..ndigits {
        digits.push(word(8 + 2 * k)?);
    }
    // The group worth 10000^pos.
    let group = |pos: i32| -> u16 {
        let idx = weight - pos;
        if idx >= 0 && (idx as usize) < ndigits {
            digits[idx as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for pos in (0..=weight).rev() {
            if pos == weight {
                let _ = write!(out, "{}", group(pos));
            } else {
                let _ = write!(out, "{:04}", group(pos));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        for pos in 1..=dscale.div_ceil(4) as i32 {
            let _ = write!(frac, "{:04}", group(-pos));
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// A NUMERIC as an exact JSON number, in either of PostgreSQL's formats.
fn pg_numeric(v: &PgValueRef<'_>) -> Result<Value, String> {
    let text = match v.format() {
        PgValueFormat::Text => v.as_str().map_err(|e| e.to_string())?.to_owned(),
        PgValueFormat::Binary => {
            let bytes = v.as_bytes().map_err(|e| e.to_string())?;
            pg_numeric_binary(bytes).ok_or("a malformed NUMERIC")?
        }
    };
    Ok(decimal(&text))
}

/// NUMERIC[] in either format: text `{1.5,NULL}`, or binary (header, then each
/// element's length and bytes).
fn pg_numeric_array(v: &PgValueRef<'_>) -> Result<Value, String> {
    match v.format() {
        PgValueFormat::Text => {
            let text = v.as_str().map_err(|e| e.to_string())?;
            let inner = text
                .strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .ok_or("a NUMERIC[] of more than one dimension")?;
            if inner.contains('{') {
                return Err("a NUMERIC[] of more than one dimension".into());
            }
            Ok(Value::Array(
                inner
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| if s == "NULL" { Value::Null } else { decimal(s) })
                    .collect(),
            ))
        }
        PgValueFormat::Binary => {
            let b = v.as_bytes().map_err(|e| e.to_string())?;
            let int = |i: usize| -> Option<i32> {
                Some(i32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
            };
            let malformed = || "a malformed NUMERIC[]".to_string();
            let ndim = int(0).ok_or_else(malformed)?;
            if ndim == 0 {
                return Ok(Value::Array(vec![]));
            }
            if ndim != 1 {
                return Err("a NUMERIC[] of more than one dimension".into());
            }
            let len = int(12).ok_or_else(malformed)?;
            let mut at = 20;
            let mut out = Vec::with_capacity(len.max(0) as usize);
            for _ in 0..len {
                let n = int(at).ok_or_else(malformed)?;
                at += 4;
                if n < 0 {
                    out.push(Value::Null);
                    continue;
                }
                let bytes = b.get(at..at + n as usize).ok_or_else(malformed)?;
                at += n as usize;
                out.push(decimal(&pg_numeric_binary(bytes).ok_or_else(malformed)?));
            }
            Ok(Value::Array(out))
        }
    }
}

fn opt<T, U>(
    r: Result<Option<T>, sqlx::Error>,
    f: impl FnOnce(T) -> U,
) -> Result<Option<U>, String> {
    r.map(|o| o.map(f)).map_err(|e| e.to_string())
}

fn array<T>(
    r: Result<Option<Vec<Option<T>>>, sqlx::Error>,
    f: impl Fn(T) -> Value,
) -> Result<Option<Value>, String> {
    opt(r, |v| {
        Value::Array(v.into_iter().map(|x| x.map_or(Value::Null, &f)).collect())
    })
}

/// A row as an object: `value(i, type name)` reads each column that is not NULL.
fn each_column<R>(
    row: &R,
    nulls: bool,
    mut value: impl FnMut(usize, &str) -> Result<Option<Value>, String>,
) -> Result<JsonRow, ConvertError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
{
    let mut out = JsonRow::new();
    for (i, col) in row.columns().iter().enumerate() {
        let info = col.type_info();
        let name = info.name();
        let raw = row.try_get_raw(i).map_err(|e| bad(col.name(), name, e))?;
        let v = if raw.is_null() {
            None
        } else {
            value(i, name).map_err(|e| bad(col.name(), name, e))?
        };
        put(&mut out, col.name(), v, nulls);
    }
    Ok(out)
}

/// One PostgreSQL row.
pub fn pg_row(row: &PgRow, nulls: bool) -> Result<JsonRow, ConvertError> {
    each_column(row, nulls, |i, name| {
        let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
        let info = raw.type_info().into_owned();
        match name {
            "BOOL" => opt(row.try_get::<Option<bool>, _>(i), Value::from),
            "INT2" => opt(row.try_get::<Option<i16>, _>(i), Value::from),
            "INT4" => opt(row.try_get::<Option<i32>, _>(i), Value::from),
            "INT8" => opt(row.try_get::<Option<i64>, _>(i), Value::from),
            "OID" => opt(
                row.try_get::<Option<sqlx::postgres::types::Oid>, _>(i),
                |o| Value::from(o.0),
            ),
            "FLOAT4" => opt(row.try_get::<Option<f32>, _>(i), |f| float(f64::from(f))),
            "FLOAT8" => opt(row.try_get::<Option<f64>, _>(i), float),
            "NUMERIC" => pg_numeric(&raw).map(Some),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "\"CHAR\"" | "CITEXT" => {
                opt(row.try_get_unchecked::<Option<String>, _>(i), Value::from)
            }
            "BYTEA" => opt(row.try_get::<Option<Vec<u8>>, _>(i), |b| binary(&b)),
            "JSON" | "JSONB" => opt(row.try_get::<Option<Value>, _>(i), |v| v),
            "DATE" => opt(row.try_get::<Option<NaiveDate>, _>(i), date),
            "TIME" => opt(row.try_get::<Option<NaiveTime>, _>(i), time),
            "TIMESTAMP" => opt(row.try_get::<Option<NaiveDateTime>, _>(i), timestamp),
            "TIMESTAMPTZ" => opt(row.try_get::<Option<DateTime<Utc>>, _>(i), |t| {
                timestamp(t.naive_utc())
            }),
            "UUID" => text_column(&raw).or_else(|_| {
                opt(row.try_get_unchecked::<Option<Vec<u8>>, _>(i), |b| {
                    uuid_text(&b)
                })
            }),
            "BOOL[]" => array(row.try_get::<Option<Vec<Option<bool>>>, _>(i), Value::from),
            "INT2[]" => array(row.try_get::<Option<Vec<Option<i16>>>, _>(i), Value::from),
            "INT4[]" => array(row.try_get::<Option<Vec<Option<i32>>>, _>(i), Value::from),
            "INT8[]" => array(row.try_get::<Option<Vec<Option<i64>>>, _>(i), Value::from),
            "FLOAT4[]" => array(row.try_get::<Option<Vec<Option<f32>>>, _>(i), |f| {
                float(f64::from(f))
            }),
            "FLOAT8[]" => array(row.try_get::<Option<Vec<Option<f64>>>, _>(i), float),
            "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" | "NAME[]" => array(
                row.try_get::<Option<Vec<Option<String>>>, _>(i),
                Value::from,
            ),
            "JSON[]" | "JSONB[]" => array(row.try_get::<Option<Vec<Option<Value>>>, _>(i), |v| v),
            "DATE[]" => array(row.try_get::<Option<Vec<Option<NaiveDate>>>, _>(i), date),
            "TIMESTAMP[]" => array(
                row.try_get::<Option<Vec<Option<NaiveDateTime>>>, _>(i),
                timestamp,
            ),
            "TIMESTAMPTZ[]" => array(
                row.try_get::<Option<Vec<Option<DateTime<Utc>>>>, _>(i),
                |t| timestamp(t.naive_utc()),
            ),
            "NUMERIC[]" => pg_numeric_array(&raw).map(Some),
            _ => match info.kind() {
                // Enums travel as their label in both formats.
                PgTypeKind::Enum(_) => text_column(&raw),
                _ => match raw.format() {
                    PgValueFormat::Text => text_column(&raw),
                    PgValueFormat::Binary => raw
                        .as_bytes()
                        .map(|b| Some(text_or_binary(b)))
                        .map_err(|e| e.to_string()),
                },
            },
        }
    })
}

fn text_column(raw: &PgValueRef<'_>) -> Result<Option<Value>, String> {
    match raw.format() {
        PgValueFormat::Text => raw
            .as_str()
            .map(|s| Some(Value::String(s.to_owned())))
            .map_err(|e| e.to_string()),
        PgValueFormat::Binary => Err("binary".into()),
    }
}

fn uuid_text(b: &[u8]) -> Value {
    let hex = data_encoding::HEXLOWER.encode(b);
    if hex.len() != 32 {
        return Value::String(hex);
    }
    Value::String(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

// ---------------------------------------------------------------- MySQL / MariaDB

/// One MySQL or MariaDB row.
pub fn mysql_row(row: &MySqlRow, nulls: bool) -> Result<JsonRow, ConvertError> {
    each_column(row, nulls, |i, name| {
        let info = row.columns()[i].type_info();
        let value: Result<Option<Value>, String> = match name {
            "BOOLEAN" => opt(row.try_get::<Option<bool>, _>(i), Value::from),
            "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" => {
                opt(row.try_get::<Option<i64>, _>(i), Value::from)
            }
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED" | "MEDIUMINT UNSIGNED"
            | "BIGINT UNSIGNED" => opt(row.try_get::<Option<u64>, _>(i), Value::from),
            "YEAR" => opt(row.try_get_unchecked::<Option<u16>, _>(i), Value::from),
            "FLOAT" => opt(row.try_get::<Option<f32>, _>(i), |f| float(f64::from(f))),
            "DOUBLE" => opt(row.try_get::<Option<f64>, _>(i), float),
            // DECIMAL travels as its text in both of MySQL's protocols.
            "DECIMAL" => opt(row.try_get_unchecked::<Option<&str>, _>(i), decimal),
            "JSON" => opt(row.try_get::<Option<Value>, _>(i), |v| v),
            "DATE" => opt(row.try_get::<Option<NaiveDate>, _>(i), date),
            "TIME" => opt(row.try_get::<Option<NaiveTime>, _>(i), time),
            "DATETIME" => opt(row.try_get::<Option<NaiveDateTime>, _>(i), timestamp),
            "TIMESTAMP" => opt(row.try_get::<Option<DateTime<Utc>>, _>(i), |t| {
                timestamp(t.naive_utc())
            }),
            // A `_bin` collation is flagged binary too: text unless its collation is
            // `binary` (MariaDB's JSON is LONGTEXT with utf8mb4_bin).
            "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB"
                if <str as sqlx::Type<sqlx::MySql>>::compatible(info) =>
            {
                opt(row.try_get::<Option<String>, _>(i), Value::from)
            }
            "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB"
            | "GEOMETRY" => opt(row.try_get_unchecked::<Option<&[u8]>, _>(i), binary),
            "BIT" => opt(row.try_get_unchecked::<Option<&[u8]>, _>(i), |b| {
                Value::from(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            }),
            _ => opt(row.try_get_unchecked::<Option<&[u8]>, _>(i), text_or_binary),
        };
        // A value the typed decoder refuses (a zero date, a TIME beyond 24 h) comes
        // as the server wrote it.
        value.or_else(|e| match row.try_get_unchecked::<Option<&[u8]>, _>(i) {
            Ok(Some(b)) if raw_is_text(name) => Ok(Some(text_or_binary(b))),
            _ => Err(e),
        })
    })
}

/// Types whose fallback bytes are readable text (the text protocol's dates and times).
fn raw_is_text(name: &str) -> bool {
    matches!(name, "DATE" | "TIME" | "DATETIME" | "TIMESTAMP")
}

// ---------------------------------------------------------------- SQLite

/// One SQLite row: by each value's own storage class (SQLite's types are dynamic).
pub fn sqlite_row(row: &SqliteRow, nulls: bool) -> Result<JsonRow, ConvertError> {
    each_column(row, nulls, |i, _declared| {
        let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
        match raw.type_info().name() {
            "INTEGER" => opt(row.try_get_unchecked::<Option<i64>, _>(i), Value::from),
            "REAL" => opt(row.try_get_unchecked::<Option<f64>, _>(i), float),
            "BLOB" => opt(row.try_get_unchecked::<Option<Vec<u8>>, _>(i), |b| {
                binary(&b)
            }),
            _ => opt(row.try_get_unchecked::<Option<String>, _>(i), Value::from),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((ndigits.len() as u16).to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(dscale.to_be_bytes());
        for d in ndigits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn binary_numerics_keep_every_digit() {
        let cases = [
            (
                numeric(&[12, 3456, 7890, 1234, 1234, 5600], 3, 0, 6),
                "12345678901234.123456",
            ),
            (numeric(&[100], -2, 0, 6), "0.000001"),
            (numeric(&[7], 0, 0x4000, 6), "-7.000000"),
            (numeric(&[], 0, 0, 0), "0"),
            (numeric(&[], 0, 0, 2), "0.00"),
            (numeric(&[1], 2, 0, 0), "100000000"),
            (numeric(&[], 0, 0xC000, 0), "NaN"),
            (numeric(&[9999, 9999], 0, 0, 4), "9999.9999"),
        ];
        for (bytes, text) in cases {
            assert_eq!(pg_numeric_binary(&bytes).as_deref(), Some(text));
        }
        assert_eq!(pg_numeric_binary(&[0, 1]), None);
    }

    #[test]
    fn decimals_are_exact_json_numbers() {
        for text in [
            "12345678901234.123456",
            "0.000001",
            "-7.000000",
            "123456789012345678901234567890",
        ] {
            assert_eq!(serde_json::to_string(&decimal(text)).unwrap(), text);
        }
        assert_eq!(decimal("NaN"), Value::String("NaN".into()));
    }

    #[test]
    fn jdbc_date_formats() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let t = NaiveTime::from_hms_micro_opt(13, 4, 5, 678_901).unwrap();
        assert_eq!(date(d), "2024-02-29");
        assert_eq!(time(t), "13:04:05.678+0000");
        assert_eq!(timestamp(d.and_time(t)), "2024-02-29T13:04:05.678+0000");
    }

    #[test]
    fn floats_without_a_json_form_are_named() {
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float(0.5), Value::from(0.5));
    }
}
