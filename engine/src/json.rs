//! Strict JSON: what every body, webhook delivery and workflow file is parsed with.
//!
//! `serde_json` keeps the last of two equal keys and accepts NUL characters in strings;
//! both hide mistakes and attacks (two `"steps"` arrays, a signed delivery whose mapped
//! field appears twice, a NUL that truncates the value downstream). [`parse`] refuses
//! them, naming the JSON pointer, and otherwise returns what `serde_json` would.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictError {
    /// Not JSON at all.
    #[error("not valid JSON (line {line}, column {column}): {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's words.
        message: String,
    },
    /// An object names the same key twice.
    #[error("{pointer}: key `{key}` appears twice in the same object")]
    DuplicateKey {
        /// The object's pointer.
        pointer: String,
        /// The key.
        key: String,
    },
    /// A string holds a NUL character.
    #[error("{pointer}: text may not contain NUL characters (\\u0000)")]
    Nul {
        /// The string's pointer (a key's object, for a key).
        pointer: String,
    },
}

impl StrictError {
    /// The JSON pointer at fault (`""` for syntax errors).
    pub fn pointer(&self) -> &str {
        match self {
            Self::Syntax { .. } => "",
            Self::DuplicateKey { pointer, .. } | Self::Nul { pointer } => pointer,
        }
    }
}

/// Deserializes a present member (even `null`) as `Some`, so "absent" and "null" differ.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

/// Escapes a key for use in a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Checks one value at `pointer`, building it.
struct Strict<'p> {
    pointer: &'p str,
    found: &'p std::cell::RefCell<Option<StrictError>>,
}

impl Strict<'_> {
    fn fail<E: de::Error>(&self, e: StrictError) -> E {
        let text = e.to_string();
        *self.found.borrow_mut() = Some(e);
        E::custom(text)
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if v.contains('\0') {
            return Err(self.fail(StrictError::Nul { pointer: self.pointer.to_string() }));
        }
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        if v.contains('\0') {
            return Err(self.fail(StrictError::Nul { pointer: self.pointer.to_string() }));
        }
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let here = format!("{}/{}", self.pointer, out.len());
            match seq.next_element_seed(Strict { pointer: &here, found: self.found })? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(self.fail(StrictError::Nul { pointer: self.pointer.to_string() }));
            }
            if out.contains_key(&key) {
                return Err(self.fail(StrictError::DuplicateKey { pointer: self.pointer.to_string(), key }));
            }
            let here = format!("{}/{}", self.pointer, escape(&key));
            let value = map.next_value_seed(Strict { pointer: &here, found: self.found })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parses `bytes` as JSON, refusing duplicate keys and NUL characters.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let found = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Strict { pointer: "", found: &found }.deserialize(&mut de).and_then(|v| de.end().map(|_| v));
    match result {
        Ok(v) => Ok(v),
        Err(e) => Err(found.into_inner().unwrap_or(StrictError::Syntax {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })),
    }
}

/// Turns serde_path_to_error's `a.b[2].c` into `/a/b/2/c`.
pub fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(&escape(key)),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_and_nul_are_refused_with_their_pointer() {
        let e = parse(br#"{"id": "x", "steps": [], "steps": [1]}"#).unwrap_err();
        assert_eq!(e, StrictError::DuplicateKey { pointer: "".into(), key: "steps".into() });
        let e = parse(br#"{"a": [{"b": 1, "b": 2}]}"#).unwrap_err();
        assert_eq!(e.pointer(), "/a/0");
        let e = parse(br#"{"title": "ok\u0000evil"}"#).unwrap_err();
        assert_eq!(e, StrictError::Nul { pointer: "/title".into() });
        assert!(matches!(parse(b"{nope").unwrap_err(), StrictError::Syntax { line: 1, .. }));
        assert!(matches!(parse(b"{} {}").unwrap_err(), StrictError::Syntax { .. }), "trailing data");
    }

    #[test]
    fn otherwise_the_same_as_serde_json() {
        let text = br#"{"a": [1, -2, 3.5, true, null, "x/y~z"], "b": {"c/d": {}}, "e": 18446744073709551615}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_slice::<Value>(text).unwrap());
    }
}
