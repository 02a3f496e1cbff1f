//! The prompts of `sluice bench local`. Each engine gets the same messages; llama.cpp gets
//! the token ids the gateway's tokenizer and chat template make of them.

use sluice_policy::{Message, Role};
use sluice_slm::SlmModel;

/// Asks for a long answer so the decode measurement generates all its tokens (checked: the
/// report shows how many were generated).
pub const DECODE_PROMPT: &str = "Write a long, detailed story about a lighthouse keeper who \
    finds a message in a bottle. Describe the sea, the weather, the town and the people.";

/// About 40 templated tokens, the size of a typical routed question.
pub const SCORE_PROMPT: &str =
    "A farmer has 17 sheep, buys 5 more and then sells 8. How many sheep does he have now? \
     Explain briefly.";

fn user(text: String) -> Vec<Message> {
    vec![Message {
        role: Role::User,
        content: text,
    }]
}

pub fn decode() -> Vec<Message> {
    user(DECODE_PROMPT.to_owned())
}

pub fn score() -> Vec<Message> {
    user(SCORE_PROMPT.to_owned())
}

/// Ordinary prose, cycled to any length; varied enough that no tokenizer merges it away.
const FILLER: &str = "The river that runs past the old mill carries snow melt from the \
    northern hills every spring, and the miller keeps a ledger of its height, the colour of \
    the water, the number of boats that pass and the price of grain in the market on each \
    day of the season.";

fn filler(words: usize) -> String {
    let base: Vec<&str> = FILLER.split_whitespace().collect();
    let mut out = String::from("Summarise the following notes in one sentence.\n\n");
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        if i % base.len() == 0 {
            out.push_str(&format!("Day {}:", i / base.len() + 1));
            out.push(' ');
        }
        out.push_str(base[i % base.len()]);
    }
    out
}

/// A prompt of exactly `target` templated tokens when one exists, else the longest below it.
pub async fn prefill(model: &SlmModel, target: u32) -> anyhow::Result<(Vec<Message>, u32)> {
    let count = |w: usize| async move {
        model
            .prompt_ids(&user(filler(w)))
            .await
            .map(|ids| ids.len() as u32)
    };
    // Largest word count whose prompt fits: tokens grow with words, so bisect.
    let (mut lo, mut hi) = (0usize, target as usize);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count(mid).await? <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let n = count(lo).await?;
    Ok((user(filler(lo)), n))
}
