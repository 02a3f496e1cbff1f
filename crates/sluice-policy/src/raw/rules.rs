//! `rules:` of a policy: conditions and actions, as written.

use super::*;

/// One entry of `rules:`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule mapping with name, when and action"
)]
pub struct RawRule {
    /// Unique within the policy; shown in logs.
    #[schemars(with = "Name")]
    pub name: String,
    /// Conditions that must all hold. Absent or null: the rule has no conditions.
    pub when: Option<RawConditions>,
    /// What the first matching rule does with the request.
    pub action: RawAction,
}

/// `when:` of a rule; every condition is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of conditions (tenant, tags, regex, prompt_tokens, turns, code, pii)"
)]
pub struct RawConditions {
    /// The caller's tenant is this one, or one of these.
    #[schemars(with = "Option<TenantNames>")]
    pub tenant: Option<OneOrMany>,
    /// Every tag is present on the request and its value matches the pattern (`*`: any
    /// run of characters, `?`: one character).
    #[schemars(with = "Option<TagPatterns>")]
    pub tags: Option<Entries<Scalar>>,
    /// A regular expression (Rust `regex` syntax) found somewhere in the last user
    /// message.
    #[schemars(length(min = 1))]
    pub regex: Option<String>,
    /// Prompt tokens, counted by the local model's tokenizer, are within the range.
    pub prompt_tokens: Option<RawRange>,
    /// The number of user messages is within the range.
    pub turns: Option<RawRange>,
    /// `true`: a user message has a code fence line; `false`: none has.
    pub code: Option<bool>,
    /// Personal data or secrets appear in the user messages: `any`, or a kind or a list
    /// of kinds.
    #[schemars(with = "Option<PiiKinds>")]
    pub pii: Option<OneOrMany>,
}

/// `prompt_tokens:` or `turns:` of a rule: bounds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with min and/or max")]
#[schemars(transform = crate::schema::min_and_or_max)]
pub struct RawRange {
    /// Lowest count that matches.
    #[schemars(range(min = 0, max = u32::MAX))]
    pub min: Option<Int>,
    /// Highest count that matches.
    #[schemars(range(min = 0, max = u32::MAX))]
    pub max: Option<Int>,
}

/// A rule's `action:` — a plain word (`local`, `score`) or a one-key mapping
/// (`{tier: NAME}`, `{reject: MESSAGE}`), checked by `validate`.
#[derive(Debug, Clone, PartialEq)]
pub enum RawAction {
    /// Any scalar.
    Word(Scalar),
    /// A mapping, in file order, duplicates kept.
    Map(Vec<(String, Scalar)>),
}

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionVisitor;

        impl<'de> Visitor<'de> for ActionVisitor {
            type Value = RawAction;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(ACTIONS)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar {
                    text: v.to_owned(),
                    is_string: true,
                }))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other(v)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawAction, E> {
                Ok(RawAction::Word(Scalar::other("null")))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAction, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Scalar>()? {
                    entries.push(entry);
                }
                Ok(RawAction::Map(entries))
            }
        }

        deserializer.deserialize_any(ActionVisitor)
    }
}

/// What a rule's action may be, for messages.
pub const ACTIONS: &str = "local, score, {tier: NAME} or {reject: MESSAGE}";

/// A string or a list of strings (`tenant: acme` or `tenant: [acme, initech]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}
