//! Whether two answers to one request agree: how shadow sampling judges a kept-local answer
//! against the tier's on live traffic, and how `sluice eval` judges the same offline, so the
//! two figures can be compared.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::normalize;

/// How a local answer compares with the large model's; written as `yes`, `no`, `unknown`
/// (as the metrics' `agree` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Agreement {
    #[serde(rename = "yes")]
    Agree,
    #[serde(rename = "no")]
    Disagree,
    #[serde(rename = "unknown")]
    /// The comparer cannot tell (long free-form answers); not counted in the estimate.
    Unknown,
}

impl Agreement {
    pub fn as_str(self) -> &'static str {
        match self {
            Agreement::Agree => "yes",
            Agreement::Disagree => "no",
            Agreement::Unknown => "unknown",
        }
    }
}

/// Judges whether a local answer says what the tier's says.
pub trait Comparer: Send + Sync + std::fmt::Debug {
    fn compare(&self, local: &str, tier: &str) -> Agreement;
}

/// Short answers, judged as the evaluation grader judges them: both answers normalised
/// (lowercase, punctuation to spaces); they agree when equal, or when the shorter, at most
/// `SHORT_WORDS` words, is found whole in the longer; two short answers that differ disagree;
/// anything longer is `Unknown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShortAnswers;

/// Longest answer, in words, that `ShortAnswers` judges.
pub const SHORT_WORDS: usize = 8;

impl Comparer for ShortAnswers {
    fn compare(&self, local: &str, tier: &str) -> Agreement {
        let (a, b) = (normalize(local), normalize(tier));
        let words = |s: &str| s.split_whitespace().count();
        let (short, long) = if words(&a) <= words(&b) {
            (a, b)
        } else {
            (b, a)
        };
        if words(&short) == 0 || words(&short) > SHORT_WORDS {
            return Agreement::Unknown;
        }
        if long.contains(&short) {
            Agreement::Agree
        } else if words(&long) <= SHORT_WORDS {
            Agreement::Disagree
        } else {
            Agreement::Unknown
        }
    }
}

/// The instruction of the judge a policy may ask (`shadow.judge`) about answers too long for
/// [`ShortAnswers`].
pub const JUDGE_INSTRUCTION: &str = "You compare two answers to the same request. Reply with \
    exactly one word: yes if both give the same answer (the same result, facts and \
    conclusion, however worded), no if they differ in any of these.";

/// The judge's question about one request's two answers.
pub fn judge_question(request: &str, first: &str, second: &str) -> String {
    format!(
        "Request:\n{request}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\n\
         Do A and B give the same answer? Reply yes or no."
    )
}

/// The judge's reply read as a judgement: its first word `yes` or `no`, else `Unknown`.
pub fn judge_verdict(reply: &str) -> Agreement {
    match normalize(reply).split_whitespace().next() {
        Some("yes") => Agreement::Agree,
        Some("no") => Agreement::Disagree,
        _ => Agreement::Unknown,
    }
}

/// Whether request `id` is in the sampled share `rate`: a hash of the id, so a request's fate
/// does not depend on timing and a replay samples the same requests.
pub fn sampled(id: &str, rate: f64) -> bool {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() as f64 / u64::MAX as f64) < rate
}

/// Agreement share and its 95% Wilson interval from `agree` of `n` judged samples.
pub fn wilson(agree: u64, n: u64) -> Option<(f64, f64, f64)> {
    if n == 0 {
        return None;
    }
    let (n, p, z) = (n as f64, agree as f64 / n as f64, 1.96_f64);
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_answers_agree_when_one_holds_the_other() {
        let c = ShortAnswers;
        assert_eq!(c.compare("8", "3 plus 5 equals 8."), Agreement::Agree);
        assert_eq!(c.compare("Yes.", "yes"), Agreement::Agree);
        assert_eq!(c.compare("implausible", "Plausible"), Agreement::Disagree);
        // " 18 " does not hold " 8 ": whole words only
        assert_eq!(c.compare("18", "8"), Agreement::Disagree);
        // a short answer and a short sentence that does not hold it
        assert_eq!(
            c.compare("No", "Paris is the capital, so yes"),
            Agreement::Disagree
        );
        // a long one that does not hold it: cannot tell
        let sentence = "Paris has been the capital of France for many centuries now";
        assert_eq!(c.compare("No", sentence), Agreement::Unknown);
        let long = "word ".repeat(SHORT_WORDS + 1);
        assert_eq!(c.compare(&long, &long), Agreement::Unknown);
        assert_eq!(c.compare("", "yes"), Agreement::Unknown);
    }

    #[test]
    fn the_judges_first_word_is_its_verdict() {
        assert_eq!(judge_verdict("Yes."), Agreement::Agree);
        assert_eq!(
            judge_verdict("  no, A says 8 and B says 9"),
            Agreement::Disagree
        );
        assert_eq!(judge_verdict("Nope"), Agreement::Unknown);
        assert_eq!(judge_verdict("Both say yes"), Agreement::Unknown);
        assert_eq!(judge_verdict(""), Agreement::Unknown);
        let q = judge_question("2+2?", "4", "four");
        assert!(
            q.contains("Answer A:\n4\n") && q.contains("Answer B:\nfour\n"),
            "{q}"
        );
    }

    #[test]
    fn sampling_is_by_id_and_near_the_rate() {
        let n = 10_000;
        let hits = (0..n).filter(|i| sampled(&format!("req-{i}"), 0.1)).count();
        assert!((900..=1100).contains(&hits), "{hits} of {n} at 10%");
        assert!(sampled("x", 1.0));
        assert_eq!(sampled("req-7", 0.3), sampled("req-7", 0.3));
    }

    #[test]
    fn wilson_interval_holds_the_estimate() {
        assert_eq!(wilson(0, 0), None);
        let (p, lo, hi) = wilson(8, 10).unwrap();
        assert!((p - 0.8).abs() < 1e-12);
        // The textbook figures for 8 of 10: 0.490 .. 0.943.
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (_, lo, hi) = wilson(10, 10).unwrap();
        assert!(lo > 0.6 && hi == 1.0);
    }
}
