//! JSON between the core and Python, without a detour through Python's `json` module.
//!
//! - [`to_py`]: a `serde_json::Value` as Python's `json.loads` would give it, except
//!   that integers of any size stay exact (the core keeps every number's digits).
//! - [`PyJson`]: a Python object serialised straight to JSON text by serde (dicts, lists,
//!   tuples, str, int of any size, float, bool, None), as `json.dumps` accepts them;
//!   anything else is a `TypeError`, as there. Non-finite floats are refused (they are not
//!   JSON), where `json.dumps` would write `NaN`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Nesting deeper than this is refused (it is most likely a cycle).
const MAX_DEPTH: usize = 256;

/// `value` as a Python object.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                let text = n.to_string();
                if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    // An integer too large for 64 bits: Python's int takes any size.
                    py.get_type::<PyInt>().call1((text,))?
                } else {
                    match n.as_f64() {
                        Some(f) => PyFloat::new(py, f).into_any(),
                        None => py.get_type::<PyFloat>().call1((text,))?,
                    }
                }
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A Python object, serialisable as JSON.
pub(crate) struct PyJson<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
}

impl<'a, 'py> PyJson<'a, 'py> {
    /// The object to serialise.
    pub(crate) fn new(obj: &'a Bound<'py, PyAny>) -> Self {
        PyJson { obj, depth: 0 }
    }

    fn child<'b>(&self, obj: &'b Bound<'py, PyAny>) -> PyJson<'b, 'py> {
        PyJson {
            obj,
            depth: self.depth + 1,
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn dict_key(key: &Bound<'_, PyAny>) -> Result<String, String> {
    if let Ok(s) = key.cast::<PyString>() {
        return s.to_str().map(str::to_owned).map_err(|e| e.to_string());
    }
    // As json.dumps: bool, int, float and None keys are written as strings.
    if key.is_none() {
        return Ok("null".into());
    }
    if let Ok(b) = key.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.into());
    }
    if key.is_instance_of::<PyInt>() || key.is_instance_of::<PyFloat>() {
        return key.str().map(|s| s.to_string()).map_err(|e| e.to_string());
    }
    Err(format!(
        "keys must be str, int, float, bool or None, not {}",
        type_name(key)
    ))
}

impl Serialize for PyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        if self.depth > MAX_DEPTH {
            return Err(S::Error::custom(
                "the object is nested too deeply (or refers to itself)",
            ));
        }
        if let Ok(text) = obj.cast::<PyString>() {
            return s.serialize_str(text.to_str().map_err(S::Error::custom)?);
        }
        if obj.is_none() {
            return s.serialize_unit();
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if obj.is_instance_of::<PyInt>() {
            if let Ok(i) = obj.extract::<i64>() {
                return s.serialize_i64(i);
            }
            if let Ok(u) = obj.extract::<u64>() {
                return s.serialize_u64(u);
            }
            // Larger integers: their digits, as a JSON number.
            let text = obj.str().map_err(S::Error::custom)?.to_string();
            let number: serde_json::Number = text.parse().map_err(S::Error::custom)?;
            return number.serialize(s);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            let f = f.value();
            if !f.is_finite() {
                return Err(S::Error::custom(format!(
                    "{f} is not a JSON number (NaN and infinities cannot be sent)"
                )));
            }
            return s.serialize_f64(f);
        }
        if let Ok(dict) = obj.cast::<PyDict>() {
            let mut map = s.serialize_map(Some(dict.len()))?;
            for (k, v) in dict.iter() {
                let key = dict_key(&k).map_err(S::Error::custom)?;
                map.serialize_entry(&key, &self.child(&v))?;
            }
            return map.end();
        }
        if let Ok(list) = obj.cast::<PyList>() {
            let mut seq = s.serialize_seq(Some(list.len()))?;
            for item in list.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            let mut seq = s.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        Err(S::Error::custom(format!(
            "Object of type {} is not JSON serializable",
            type_name(obj)
        )))
    }
}

/// `obj` as a `serde_json::Value`.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    serde_json::to_value(PyJson::new(obj)).map_err(|e| PyTypeError::new_err(e.to_string()))
}
