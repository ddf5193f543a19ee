//! Naming what kind of JSON value a peer sent, for error messages read by publishers
//! and clients ("expected a string, got a number"). Shared by every parser of
//! untrusted JSON: ingress messages and the client protocols.

use serde_json::Value;

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
