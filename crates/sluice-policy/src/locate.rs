//! Key paths into a YAML document (`tiers[0].timeout`) and the line each points at.
//!
//! Validation runs on plain raw values that carry no positions, so to give a
//! validation error a line number the document is walked a second time along
//! the error's key path. The walk stops at the target by failing with a marker
//! error; serde_norway attaches the position of the node being read to any
//! error raised there, and that position is the answer.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root to a value, shown like `tiers[0].timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => write!(f, "{key}")?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Marker error text meaning "the target node is here".
const FOUND: &str = "\u{0}sluice-policy: located\u{0}";

/// The 1-based line of the value at `path` in `src` (of its key, for a mapping
/// entry); `None` when the path is empty or not in the document.
pub fn line_of(src: &str, path: &KeyPath) -> Option<usize> {
    if path.0.is_empty() {
        return None;
    }
    let deserializer = serde_norway::Deserializer::from_str(src);
    match Walk(&path.0).deserialize(deserializer) {
        Err(err) if err.to_string().contains(FOUND) => err.location().map(|loc| loc.line()),
        _ => None,
    }
}

/// Follows the remaining segments from the current node.
struct Walk<'a>(&'a [Seg]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.0.is_empty() {
            // Every visit of `Here` fails with an "invalid type" error whose
            // "expected" part is the marker, whatever the node is.
            deserializer.deserialize_any(Here)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping or a sequence")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return Ok(());
        };
        while let Some(matched) = map.next_key_seed(KeySeed {
            want,
            is_target: rest.is_empty(),
        })? {
            if matched {
                return map.next_value_seed(Walk(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Walk(rest)).map(|_| ())
    }
}

/// Reads one mapping key: `Ok(true)` when it is the wanted key, or the marker
/// error when that key is the end of the path (so the line is the key's).
struct KeySeed<'a> {
    want: &'a str,
    is_target: bool,
}

impl KeySeed<'_> {
    fn check<E: de::Error>(self, key: &str) -> Result<bool, E> {
        match key == self.want {
            true if self.is_target => Err(E::custom(FOUND)),
            matched => Ok(matched),
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.check(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.check(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.check(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.check(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
}

/// Accepts nothing; see `Walk::deserialize`.
struct Here;

impl Visitor<'_> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
version: 1
scoring:
  threshold: 0.5
  weights: { bias: 1, mean_logprob: 2 }
tiers:
  - name: a
    timeout: 30s
  -
    name: b
    timeout: 1m
";

    fn path(segs: &[Seg]) -> KeyPath {
        KeyPath(segs.to_vec())
    }

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn display_matches_serde_path_to_error_style() {
        let p = KeyPath::default().key("tiers").index(0).key("timeout");
        assert_eq!(p.to_string(), "tiers[0].timeout");
        assert_eq!(KeyPath::default().to_string(), "");
    }

    #[test]
    fn finds_lines_of_keys_and_elements() {
        assert_eq!(line_of(DOC, &path(&[key("version")])), Some(1));
        assert_eq!(
            line_of(DOC, &path(&[key("scoring"), key("threshold")])),
            Some(3)
        );
        let weight = path(&[key("scoring"), key("weights"), key("mean_logprob")]);
        assert_eq!(line_of(DOC, &weight), Some(4));
        let timeout = path(&[key("tiers"), Seg::Index(1), key("timeout")]);
        assert_eq!(line_of(DOC, &timeout), Some(10));
        let tier0 = path(&[key("tiers"), Seg::Index(0)]);
        assert_eq!(line_of(DOC, &tier0), Some(6));
    }

    #[test]
    fn missing_paths_have_no_line() {
        assert_eq!(line_of(DOC, &KeyPath::default()), None);
        assert_eq!(line_of(DOC, &path(&[key("nope")])), None);
        assert_eq!(line_of(DOC, &path(&[key("tiers"), Seg::Index(5)])), None);
        assert_eq!(line_of(DOC, &path(&[key("version"), key("x")])), None);
        assert_eq!(line_of("{ unclosed", &path(&[key("version")])), None);
    }
}
