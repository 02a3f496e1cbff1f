//! Loose value types shared by the raw files: integers, numbers and scalars kept wide
//! so validation reports bad values itself, and mappings that keep duplicates.

use super::*;

/// A mapping from names to values in file order, duplicates kept so validation can
/// reject them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entries<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// An integer; wide so that validation can report out-of-range values itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }

        deserializer.deserialize_i64(IntVisitor)
    }
}

/// A number, integer or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumVisitor;

        impl Visitor<'_> for NumVisitor {
            type Value = Num;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
        }

        deserializer.deserialize_f64(NumVisitor)
    }
}

/// Any YAML scalar, kept as text, for values whose type is part of the check
/// (a bare `30` is not a duration, and the error should say so in our words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    /// Whether the YAML value was a string (affects how it is quoted in errors).
    pub is_string: bool,
}

impl Scalar {
    /// A scalar that was not a string, as text.
    pub fn other(text: impl ToString) -> Scalar {
        Scalar {
            text: text.to_string(),
            is_string: false,
        }
    }

    /// The value as it should appear after "found" in an error message.
    pub fn found(&self) -> String {
        if self.is_string {
            format!("{:?}", self.text)
        } else {
            self.text.clone()
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar value")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar {
                    text: v.to_owned(),
                    is_string: true,
                })
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::other(v))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::other("null"))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_keep_file_order_and_duplicates() {
        let w: RawWeights = serde_norway::from_str("{ b: 1, a: 2.5, b: -3 }").unwrap();
        assert_eq!(
            w.0,
            vec![
                ("b".into(), Num(1.0)),
                ("a".into(), Num(2.5)),
                ("b".into(), Num(-3.0))
            ]
        );
    }

    #[test]
    fn scalar_records_whether_it_was_a_string() {
        let s: Scalar = serde_norway::from_str("30s").unwrap();
        assert_eq!(s.found(), "\"30s\"");
        let n: Scalar = serde_norway::from_str("30").unwrap();
        assert_eq!((n.text.as_str(), n.is_string), ("30", false));
        assert_eq!(n.found(), "30");
    }

    #[test]
    fn numbers_accept_integers_and_say_what_they_expect() {
        let n: Num = serde_norway::from_str("2").unwrap();
        assert_eq!(n, Num(2.0));
        let i: Int = serde_norway::from_str("-3").unwrap();
        assert_eq!(i, Int(-3));
        let err = serde_norway::from_str::<Int>("1.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected an integer"), "{err}");
        let err = serde_norway::from_str::<Num>("x").unwrap_err().to_string();
        assert!(err.contains("expected a number"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_norway::from_str::<RawLocal>("{ model: m, max_token: 3 }").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_token`"),
            "{err}"
        );
    }
}
