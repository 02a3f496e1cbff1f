//! Features read from the request text alone, before any model runs.

use sluice_policy::{Feature, Message, Role};

use crate::FeatureValues;

/// Words that mark a question asking for a fact or an explanation.
const QUESTION_WORDS: [&str; 9] = [
    "what", "who", "whom", "whose", "which", "when", "where", "why", "how",
];

/// Digits and fenced code blocks in the user messages, user turns, and question words in the
/// last user message.
pub fn lexical_features(messages: &[Message]) -> FeatureValues {
    let user: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .collect();
    let digits: usize = user
        .iter()
        .map(|t| t.chars().filter(char::is_ascii_digit).count())
        .sum();
    // A block is an opening fence and its closing one; an unclosed fence still opens a block.
    let code_blocks: usize = user.iter().map(|t| fences(t).div_ceil(2)).sum();
    let question_words = user.last().map_or(0, |t| {
        t.split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| QUESTION_WORDS.iter().any(|q| w.eq_ignore_ascii_case(q)))
            .count()
    });
    FeatureValues(vec![
        (Feature::PromptDigits, digits as f64),
        (Feature::Turns, user.len() as f64),
        (Feature::CodeBlocks, code_blocks as f64),
        (Feature::QuestionWords, question_words as f64),
    ])
}

/// Lines that open or close a fenced code block (``` or ~~~ at the start, after indentation).
fn fences(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("```") || l.starts_with("~~~")
        })
        .count()
}

/// Every feature of a request, in `Feature::ALL` order: the request text's, the draft's when
/// the scoring method made one, and the prefill features computed by `prefill_features`.
pub fn request_features(
    messages: &[Message],
    draft: Option<&crate::Draft>,
    prefill: FeatureValues,
) -> FeatureValues {
    let mut all = draft
        .map(|d| crate::draft_features(d).0)
        .unwrap_or_default();
    all.extend(lexical_features(messages).0);
    all.extend(prefill.0);
    all.sort_by_key(|(f, _)| Feature::ALL.iter().position(|g| g == f));
    FeatureValues(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t: &str) -> Message {
        Message::new(Role::User, t)
    }

    #[test]
    fn counts_digits_turns_blocks_and_question_words() {
        let msgs = [
            Message::new(Role::System, "Answer in 3 words. What?"),
            user("What is 12 + 7?"),
            Message::new(Role::Assistant, "19 (what else)"),
            user("```rust\nfn main() {}\n```\nWhy and HOW does it compile? Whatever."),
        ];
        let f = lexical_features(&msgs);
        // system and assistant text is not counted
        assert_eq!(f.get(Feature::PromptDigits), Some(3.0));
        assert_eq!(f.get(Feature::Turns), Some(2.0));
        assert_eq!(f.get(Feature::CodeBlocks), Some(1.0));
        // only the last user message; "Whatever" is not "what"
        assert_eq!(f.get(Feature::QuestionWords), Some(2.0));
    }

    #[test]
    fn an_unclosed_fence_is_a_block_and_plain_text_has_none() {
        assert_eq!(
            lexical_features(&[user("~~~\ncode")]).get(Feature::CodeBlocks),
            Some(1.0)
        );
        let f = lexical_features(&[user("Plain words, no code; who's there?")]);
        assert_eq!(f.get(Feature::CodeBlocks), Some(0.0));
        assert_eq!(f.get(Feature::QuestionWords), Some(0.0), "who's is not who");
        assert_eq!(f.get(Feature::PromptDigits), Some(0.0));
    }

    #[test]
    fn no_messages_give_zeros() {
        let f = lexical_features(&[]);
        assert!(f.0.iter().all(|(_, v)| *v == 0.0), "{f:?}");
        assert_eq!(f.0.len(), 4);
    }

    #[test]
    fn request_features_cover_every_feature_in_order() {
        let draft = crate::Draft {
            text: "4".into(),
            pieces: vec!["4".into()],
            prompt_tokens: 5,
            completion_tokens: 1,
            finish: crate::FinishReason::Stop,
            tokens: vec![crate::TokenStat {
                logprob: -0.5,
                entropy: 0.1,
            }],
        };
        let f = request_features(&[user("2+2?")], Some(&draft), FeatureValues::default());
        let names: Vec<Feature> = f.0.iter().map(|(k, _)| *k).collect();
        let draft_and_text: Vec<Feature> = Feature::ALL
            .into_iter()
            .filter(|f| {
                matches!(
                    f.source(),
                    sluice_policy::FeatureSource::Draft | sluice_policy::FeatureSource::Text
                )
            })
            .collect();
        assert_eq!(
            names, draft_and_text,
            "in Feature::ALL order, without prefill features"
        );
        assert_eq!(f.get(Feature::PromptDigits), Some(2.0));
        assert_eq!(f.get(Feature::MeanLogprob), Some(-0.5));
    }
}
