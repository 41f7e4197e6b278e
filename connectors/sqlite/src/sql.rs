//! The SQL side of the connector: a query's parameters, the conversion between
//! JSON and SQLite values, inserting a published row, and streaming a SELECT's rows
//! in chunks. All of it blocking, run on tokio's blocking pool by the handler.

use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::{Map, Number, Value};
use tokio::sync::mpsc;
use vantiq_connector_sdk::QueryError;

use crate::handler::{bad_parameter, is_identifier, Db};

/// A query's parameters: `{"sql": "...", "params": [..] or {..}}`.
#[derive(Debug)]
pub(crate) struct Select {
    sql: String,
    params: Binds,
}

#[derive(Debug)]
pub(crate) enum Binds {
    None,
    /// `?`, `?NNN`: bound by position (the first value is `?1`).
    Positional(Vec<Value>),
    /// `:name`, `@name`, `$name`: bound by name. A key without a prefix gets
    /// `:`.
    Named(Map<String, Value>),
}

impl Select {
    pub(crate) fn from_params(params: &Value) -> Result<Select, QueryError> {
        let sql = match params.get("sql") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => return Err(bad_parameter("sql", "is empty")),
            Some(other) => {
                return Err(bad_parameter(
                    "sql",
                    format!("must be a string, not {}", json_kind(other)),
                ))
            }
            None => return Err(bad_parameter("sql", "is missing")),
        };
        let params = match params.get("params") {
            None | Some(Value::Null) => Binds::None,
            Some(Value::Array(values)) => Binds::Positional(values.clone()),
            Some(Value::Object(values)) => Binds::Named(values.clone()),
            Some(other) => {
                return Err(bad_parameter(
                    "params",
                    format!("must be a list or an object, not {}", json_kind(other)),
                ))
            }
        };
        Ok(Select { sql, params })
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// JSON to an SQLite value: booleans become 0/1, lists and objects their
/// JSON text.
pub(crate) fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => SqlValue::Text(v.to_string()),
    }
}

/// An SQLite value to JSON: a blob becomes a base64 string, a non-finite
/// real `null`.
pub(crate) fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(base64(b)),
    }
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Inserts `object` as a row of the configured table. Blocking. Returns the
/// new row's rowid.
pub(crate) fn insert(db: &Db, object: &Map<String, Value>) -> Result<i64, String> {
    let table = db
        .config
        .table
        .as_deref()
        .ok_or("the source has no \"table\" to insert into")?;
    if let Some(bad) = object.keys().find(|k| !is_identifier(k)) {
        return Err(format!(
            "key {bad:?} is not a column name ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    let sql = if object.is_empty() {
        format!("INSERT INTO \"{table}\" DEFAULT VALUES")
    } else {
        let columns: Vec<String> = object.keys().map(|k| format!("\"{k}\"")).collect();
        let holes: Vec<String> = (1..=object.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({})",
            columns.join(", "),
            holes.join(", ")
        )
    };
    let conn = db.lock();
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| format!("cannot insert into {table}: {e}"))?;
    stmt.execute(rusqlite::params_from_iter(object.values().map(to_sql)))
        .map_err(|e| format!("cannot insert into {table}: {e}"))?;
    Ok(conn.last_insert_rowid())
}

/// What the SQL worker sends to the query task: a chunk of rows, or the
/// error that ends the query.
pub(crate) type Chunk = Result<Vec<Value>, QueryError>;

/// Runs a SELECT and sends its rows in chunks. Blocking. Stops early when
/// the receiver is gone (the query's connection ended).
pub(crate) fn run_select(db: &Db, select: &Select, tx: &mpsc::Sender<Chunk>) {
    if let Err(e) = stream_rows(db, select, tx) {
        let _ = tx.blocking_send(Err(e));
    }
}

pub(crate) fn stream_rows(
    db: &Db,
    select: &Select,
    tx: &mpsc::Sender<Chunk>,
) -> Result<(), QueryError> {
    let sql = select.sql.as_str();
    let conn = db.lock();
    let mut stmt = conn.prepare(sql).map_err(|e| {
        let reason = match e {
            rusqlite::Error::MultipleStatement => "only one statement is allowed".to_owned(),
            other => other.to_string(),
        };
        QueryError::new(
            "sqlite.badSql",
            "The SQL statement {0} is not valid: {1}",
            [sql.to_owned(), reason],
        )
    })?;
    // `readonly()` alone lets BEGIN, ATTACH and the like through (they
    // change no database file); a statement that returns no columns is no
    // query either.
    if !stmt.readonly() || stmt.column_count() == 0 {
        return Err(QueryError::new(
            "sqlite.notReadOnly",
            "Only read-only statements that return rows (SELECT) are allowed: {0}",
            [sql],
        ));
    }
    bind(&mut stmt, &select.params)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let chunk_size = db.config.chunk_size;
    let max_rows = db.config.max_rows;
    let failed = |e: rusqlite::Error| {
        QueryError::new(
            "sqlite.queryFailed",
            "The SQL statement {0} failed: {1}",
            [sql.to_owned(), e.to_string()],
        )
    };
    let mut rows = stmt.raw_query();
    let mut chunk = Vec::with_capacity(chunk_size.min(4096));
    let mut count: u64 = 0;
    while let Some(row) = rows.next().map_err(failed)? {
        count += 1;
        if count > max_rows {
            return Err(QueryError::new(
                "sqlite.tooManyRows",
                "The query returns more than {0} rows (maxRows): {1}",
                [Value::from(max_rows), Value::from(sql)],
            ));
        }
        let mut object = Map::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            object.insert(name.clone(), to_json(row.get_ref(i).map_err(failed)?));
        }
        chunk.push(Value::Object(object));
        if chunk.len() == chunk_size
            && tx
                .blocking_send(Ok(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(chunk_size.min(4096)),
                )))
                .is_err()
        {
            return Ok(()); // nobody is listening any more
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
    Ok(())
}

/// Binds the query's parameters, checking that they fit the statement.
pub(crate) fn bind(stmt: &mut rusqlite::Statement<'_>, binds: &Binds) -> Result<(), QueryError> {
    let expected = stmt.parameter_count();
    let bind_error = |e: rusqlite::Error| bad_parameter("params", e.to_string());
    match binds {
        Binds::None => {
            if expected > 0 {
                return Err(bad_parameter(
                    "params",
                    format!("the statement has {expected} parameter(s) and none were given"),
                ));
            }
        }
        Binds::Positional(values) => {
            if values.len() != expected {
                return Err(bad_parameter(
                    "params",
                    format!(
                        "the statement has {expected} parameter(s) and {} were given",
                        values.len()
                    ),
                ));
            }
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, to_sql(v))
                    .map_err(bind_error)?;
            }
        }
        Binds::Named(values) => {
            let mut given = Vec::with_capacity(values.len());
            for (key, v) in values {
                let name = if key.starts_with([':', '@', '$']) {
                    key.clone()
                } else {
                    format!(":{key}")
                };
                let index = stmt
                    .parameter_index(&name)
                    .map_err(bind_error)?
                    .ok_or_else(|| {
                        bad_parameter("params", format!("the statement has no parameter {name}"))
                    })?;
                stmt.raw_bind_parameter(index, to_sql(v))
                    .map_err(bind_error)?;
                given.push(name);
            }
            let missing: Vec<String> = (1..=expected)
                .map(|i| stmt.parameter_name(i).unwrap_or("?").to_owned())
                .filter(|name| !given.contains(name))
                .collect();
            if !missing.is_empty() {
                return Err(bad_parameter(
                    "params",
                    format!("no value given for {}", missing.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
