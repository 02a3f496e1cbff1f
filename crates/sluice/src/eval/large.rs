//! The large model's answers to the labelled prompts: asked of a policy's tier, or read from a
//! file an earlier run saved, so an evaluation repeats exactly without calling anything.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_policy::{GenParams, Message, Role, Tier};
use sluice_upstream::{UpstreamClient, UpstreamRequest};

use super::data::Item;
use super::jsonl;
use super::progress::Progress;

/// One saved answer (a JSON line of the `--save-large` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargeAnswer {
    pub id: String,
    /// The model that answered, as the tier reported it.
    pub model: String,
    pub text: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl LargeAnswer {
    /// What this answer costs at `tier`'s prices, in USD.
    pub fn cost(&self, tier: &Tier) -> f64 {
        tier.price.cost(self.prompt_tokens, self.completion_tokens)
    }
}

/// Ask `tier` every item's prompt (temperature 0, at most `max_tokens`), in order; a failed call
/// stops the run with the item's id. Answers are appended to `save` as they arrive, so an
/// interrupted run keeps what it got.
pub async fn ask_tier(
    tier: &Tier,
    items: &[Item],
    max_tokens: u32,
    save: Option<&Path>,
) -> anyhow::Result<Vec<LargeAnswer>> {
    let client = UpstreamClient::new().context("cannot build the HTTP client")?;
    let mut out = jsonl::Writer::create(save)?;
    let mut answers = Vec::with_capacity(items.len());
    let mut progress = Progress::new(&format!("large ({})", tier.name), items.len());
    for item in items {
        let params = GenParams {
            max_tokens: Some(max_tokens),
            temperature: Some(0.0),
            ..GenParams::default()
        };
        let req = UpstreamRequest::new(vec![Message::new(Role::User, &item.prompt)], &params);
        let c = client
            .chat(tier, &req)
            .await
            .with_context(|| format!("item {}: tier {:?} failed", item.id, tier.name))?;
        let answer = LargeAnswer {
            id: item.id.clone(),
            model: c.model,
            text: c.content,
            prompt_tokens: c.usage.prompt_tokens,
            completion_tokens: c.usage.completion_tokens,
        };
        if let Some(w) = out.as_mut() {
            w.write(&answer)?;
        }
        answers.push(answer);
        progress.step();
    }
    progress.finish();
    Ok(answers)
}

/// Saved answers for exactly these items, in their order; an item without an answer is an
/// error naming it (answers for other items are ignored, so one file serves any `--limit`).
pub fn read_answers(path: &Path, items: &[Item]) -> anyhow::Result<Vec<LargeAnswer>> {
    let what = "a saved answer {id, model, text, prompt_tokens, completion_tokens}";
    let by_id: HashMap<String, LargeAnswer> = jsonl::read::<LargeAnswer>(path, what)?
        .into_iter()
        .map(|(_, a)| (a.id.clone(), a))
        .collect();
    jsonl::for_items(
        by_id,
        items,
        path,
        "ask the tier again with --save-large FILE",
    )
}

#[cfg(test)]
mod tests {
    use super::super::data::tests::file;
    use super::*;

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            task: "t".into(),
            prompt: "p".into(),
            answers: vec!["1".into()],
            grade: "contains".into(),
            choices: vec![],
        }
    }

    #[test]
    fn reads_answers_in_item_order_and_names_missing_ones() {
        let f = file(
            "{\"id\":\"b\",\"model\":\"m\",\"text\":\"2\",\"prompt_tokens\":3,\"completion_tokens\":1}\n\
             {\"id\":\"a\",\"model\":\"m\",\"text\":\"1\",\"prompt_tokens\":4,\"completion_tokens\":2}\n",
        );
        let got = read_answers(f.path(), &[item("a"), item("b")]).unwrap();
        assert_eq!(got[0].text, "1");
        assert_eq!(got[1].id, "b");
        let e = read_answers(f.path(), &[item("a"), item("c")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing for 1 of the 2 items (first: c)"), "{e}");
        let bad = file("{\"id\":\"a\",\"text\":\"1\"}\n");
        let e = format!("{:#}", read_answers(bad.path(), &[item("a")]).unwrap_err());
        assert!(
            e.contains("line 1") && e.contains("expected a saved answer"),
            "{e}"
        );
    }
}
