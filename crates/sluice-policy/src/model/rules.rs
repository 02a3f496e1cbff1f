//! Routing rules: conditions on a request, checked in order before scoring, and the
//! route the first matching rule decides.

use std::collections::BTreeSet;
use std::fmt;

use crate::pii::PiiKind;

/// One entry of `rules:`: when every condition holds, `action` decides the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique within the policy; shown in logs and `sluice explain`.
    pub name: String,
    /// All must hold; none at all matches every request.
    pub when: Conditions,
    pub action: RuleAction,
}

/// A rule's conditions; each `None` (or empty list) imposes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The caller's tenant is one of these; empty: any tenant.
    pub tenants: Vec<String>,
    /// Every tag is present on the request and its value matches the pattern.
    pub tags: Vec<(String, TagPattern)>,
    /// Found somewhere in the last user message.
    pub regex: Option<RuleRegex>,
    /// Prompt tokens, counted by the local model's tokenizer, are within the range.
    pub prompt_tokens: Option<CountRange>,
    /// The number of user messages is within the range.
    pub turns: Option<CountRange>,
    /// `true`: a user message has a code fence line (``` or ~~~); `false`: none has.
    pub code: Option<bool>,
    /// Personal data or secrets of these kinds appear in the user messages.
    pub pii: Option<PiiMatch>,
}

impl Conditions {
    /// Whether there is no condition at all, so every request matches.
    pub fn is_empty(&self) -> bool {
        self == &Conditions::default()
    }
}

/// A compiled rule regex (Rust `regex` syntax). Compares by its source text.
#[derive(Debug, Clone)]
pub struct RuleRegex(pub regex::Regex);

impl RuleRegex {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<RuleRegex, regex::Error> {
        regex::Regex::new(pattern).map(RuleRegex)
    }

    /// The source text of the regex.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the regex matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for RuleRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RuleRegex {}

/// A glob over a tag value: `*` matches any run of characters (empty included), `?`
/// exactly one character, anything else itself. No escapes; without a wildcard the
/// match is exact. Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern {
    source: String,
    chars: Vec<char>,
}

impl TagPattern {
    /// The pattern written as `glob`; every string is a valid pattern.
    pub fn new(glob: &str) -> TagPattern {
        TagPattern {
            source: glob.to_owned(),
            chars: glob.chars().collect(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `value` matches. Iterative, without allocation: on a mismatch
    /// the last `*` takes one more character, so the cost is at most
    /// `pattern length × value length` and linear for patterns with one `*`.
    pub fn matches(&self, value: &str) -> bool {
        let pattern = &self.chars;
        let (mut p, mut v) = (0usize, 0usize); // pattern index, byte offset in `value`
                                               // After the last `*` seen: the pattern index following it, and where in `value`
                                               // the run it matches currently ends.
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = value[v..].chars().next() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p + 1, v));
                    p += 1;
                    continue;
                }
                Some(&q) if q == '?' || q == c => {
                    p += 1;
                    v += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            let Some((after_star, run_end)) = star else {
                return false;
            };
            // Let the star swallow one more character and retry from just after it.
            let swallowed = value[run_end..].chars().next().map_or(1, char::len_utf8);
            star = Some((after_star, run_end + swallowed));
            p = after_star;
            v = run_end + swallowed;
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Inclusive bounds on a count; a missing bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountRange {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

impl CountRange {
    /// Whether `n` is within both bounds.
    pub fn contains(&self, n: u32) -> bool {
        self.min.is_none_or(|min| n >= min) && self.max.is_none_or(|max| n <= max)
    }
}

/// `3..=8`, `3..` or `..=8` (`..` when open at both ends).
impl fmt::Display for CountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "{min}..={max}"),
            (Some(min), None) => write!(f, "{min}.."),
            (None, Some(max)) => write!(f, "..={max}"),
            (None, None) => f.write_str(".."),
        }
    }
}

/// Which personal data a `pii` condition looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PiiMatch {
    /// Any kind at all.
    Any,
    /// At least one of these kinds (never empty).
    Kinds(BTreeSet<PiiKind>),
}

impl PiiMatch {
    /// Whether `found` (the kinds present in a request) satisfies the condition.
    pub fn is_met_by(&self, found: &BTreeSet<PiiKind>) -> bool {
        match self {
            PiiMatch::Any => !found.is_empty(),
            PiiMatch::Kinds(kinds) => !kinds.is_disjoint(found),
        }
    }
}

/// `any`, or the kinds' names separated by commas.
impl fmt::Display for PiiMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PiiMatch::Any => f.write_str("any"),
            PiiMatch::Kinds(kinds) => {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// What a matching rule does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Answer with the local model, without scoring.
    Local,
    /// Score with the local model and compare with the threshold, as without rules.
    Score,
    /// Send to this tier of the policy (its name), without scoring.
    Tier(String),
    /// Refuse the request with this message.
    Reject(String),
}

/// `local`, `score`, `tier NAME` or `reject "MESSAGE"`.
impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleAction::Local => f.write_str("local"),
            RuleAction::Score => f.write_str("score"),
            RuleAction::Tier(name) => write!(f, "tier {name}"),
            RuleAction::Reject(message) => write!(f, "reject {message:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, v: &str) -> bool {
        TagPattern::new(p).matches(v)
    }

    #[test]
    fn globs_without_wildcards_are_exact() {
        assert!(glob("prod", "prod"));
        assert!(!glob("prod", "Prod"));
        assert!(!glob("prod", "prod2"));
        assert!(!glob("prod", "pro"));
        assert!(glob("", ""));
        assert!(!glob("", "x"));
    }

    #[test]
    fn star_matches_any_run_and_question_mark_one_char() {
        let cases = [
            ("ml-*", "ml-", true),
            ("ml-*", "ml-infra", true),
            ("ml-*", "ml", false),
            ("*", "", true),
            ("*", "anything", true),
            ("**", "a", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*c", "abcbc", true),
            ("a*c", "abcbd", false),
            ("*-prod", "eu-west-prod", true),
            ("?", "é", true),
            ("?", "", false),
            ("??", "é", false),
            ("v?.*", "v1.20", true),
            ("v?.*", "v10.2", false),
            ("é*ß", "éxyzß", true),
            ("*a", "bbbb", false),
        ];
        for (p, v, want) in cases {
            assert_eq!(glob(p, v), want, "{p} vs {v}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let value = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!glob(&pattern, &value));
        assert!(glob(&format!("{}*", "*a".repeat(50)), &value));
    }

    #[test]
    fn ranges_are_inclusive_and_open_when_unset() {
        let r = CountRange {
            min: Some(2),
            max: Some(4),
        };
        assert!(!r.contains(1) && r.contains(2) && r.contains(4) && !r.contains(5));
        assert!(CountRange::default().contains(0));
        assert_eq!(r.to_string(), "2..=4");
        let lower = CountRange {
            min: Some(3),
            max: None,
        };
        assert!(lower.contains(u32::MAX) && !lower.contains(2));
        assert_eq!(lower.to_string(), "3..");
        assert_eq!(
            CountRange {
                min: None,
                max: Some(9)
            }
            .to_string(),
            "..=9"
        );
    }

    #[test]
    fn regexes_compare_by_source() {
        let a = RuleRegex::new("a+").unwrap();
        assert_eq!(a, RuleRegex::new("a+").unwrap());
        assert_ne!(a, RuleRegex::new("a*").unwrap());
        assert!(a.is_match("baaa"));
        assert!(RuleRegex::new("(").is_err());
    }

    #[test]
    fn pii_match_any_and_kinds() {
        let found: BTreeSet<PiiKind> = [PiiKind::Email].into();
        assert!(PiiMatch::Any.is_met_by(&found));
        assert!(!PiiMatch::Any.is_met_by(&BTreeSet::new()));
        let kinds = PiiMatch::Kinds([PiiKind::ApiKey, PiiKind::Email].into());
        assert!(kinds.is_met_by(&found));
        assert!(!PiiMatch::Kinds([PiiKind::Card].into()).is_met_by(&found));
        assert_eq!(kinds.to_string(), "email, api_key");
    }
}
