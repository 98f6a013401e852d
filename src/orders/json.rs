//! Order JSON read strictly: a key given twice in one object is refused, wherever it is.
//! serde_json keeps the last of two equal keys, so `"status": "cancelled", "status":
//! "scheduled"` would be stored as scheduled: which of the two the sender meant cannot be
//! known, and guessing could put a cancelled order back in use.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses JSON text into a value, refusing an object that gives a key twice.
///
/// # Errors
/// Not JSON, or a duplicate key (named, with the line and column).
pub fn parse_strict(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                // A key is a field name, but the sender chose it: control characters escaped.
                return Err(A::Error::custom(format!(
                    "the key \"{}\" is given twice in one object",
                    key.escape_default()
                )));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_key_is_refused_at_any_depth() {
        let err = parse_strict(br#"{"status":"cancelled","status":"scheduled"}"#).unwrap_err();
        assert!(
            err.to_string().contains("\"status\" is given twice"),
            "{err}"
        );
        let err = parse_strict(br#"{"orders":[{"patient":{"id":"a","id":"b"}}]}"#).unwrap_err();
        assert!(err.to_string().contains("\"id\" is given twice"), "{err}");
        assert!(!err.to_string().contains("\"a\"") && !err.to_string().contains("\"b\""));
    }

    #[test]
    fn other_json_reads_as_serde_json_reads_it() {
        let text = br#"{"a":[1,-2,3.5,true,null,"x\u0041"],"b":{"c":{}},"d":18446744073709551615}"#;
        assert_eq!(
            parse_strict(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(parse_strict(b"{} x").is_err(), "trailing data");
        assert!(parse_strict(b"[1,").is_err());
    }
}
