//! Labelled prompts (the routing-dev JSONL format) and their grading.

use std::path::Path;

use anyhow::bail;
use serde::Deserialize;
use sluice_router::eval::{grade, GradeKind};

/// One labelled prompt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub task: String,
    pub prompt: String,
    pub answers: Vec<String>,
    pub grade: String,
    #[serde(default)]
    pub choices: Vec<String>,
}

impl Item {
    /// Whether `response` is right by the data's grading rules.
    pub fn is_right(&self, response: &str) -> bool {
        let kind = if self.grade == "choice" {
            GradeKind::Choice
        } else {
            GradeKind::Contains
        };
        grade(response, kind, &self.answers, &self.choices)
    }
}

/// The first `limit` items of a JSONL file (all without a limit), checked: known grading rule,
/// choices for `choice` items, unique ids.
pub fn read_items(path: &Path, limit: Option<usize>) -> anyhow::Result<Vec<Item>> {
    let mut items: Vec<Item> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let what = "a labelled item {id, task, prompt, answers, grade, choices?}";
    for (line, item) in super::jsonl::read::<Item>(path, what)? {
        let at = || format!("{} line {line}", path.display());
        match item.grade.as_str() {
            "contains" => {}
            "choice" if !item.choices.is_empty() => {}
            "choice" => bail!("{}: grade \"choice\" needs a non-empty `choices`", at()),
            other => bail!(
                "{}: grade: expected \"contains\" or \"choice\", found {other:?}",
                at()
            ),
        }
        if item.answers.is_empty() {
            bail!("{}: `answers` is empty: nothing to grade against", at());
        }
        if !ids.insert(item.id.clone()) {
            bail!("{}: id {:?} appears twice", at(), item.id);
        }
        items.push(item);
        if limit.is_some_and(|l| items.len() >= l) {
            break;
        }
    }
    if items.is_empty() {
        bail!("{}: no items", path.display());
    }
    Ok(items)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file holding `text`, unique to this test process and call.
    pub(crate) fn file(text: &str) -> TempFile {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sluice-eval-{}-{n}.jsonl", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    /// Removed when dropped.
    pub(crate) struct TempFile(pub std::path::PathBuf);

    impl TempFile {
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const GOOD: &str = r#"{"id":"a","task":"add","prompt":"What is 2 plus 2?","answers":["4"],"grade":"contains"}
{"id":"b","task":"yn","prompt":"Yes or no?","answers":["no"],"choices":["yes","no"],"grade":"choice"}
"#;

    #[test]
    fn reads_and_grades() {
        let f = file(GOOD);
        let items = read_items(f.path(), None).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_right("The answer is 4."));
        assert!(!items[0].is_right("14"));
        assert!(items[1].is_right("No, and yes later"));
        assert_eq!(read_items(f.path(), Some(1)).unwrap().len(), 1);
    }

    #[test]
    fn bad_items_name_the_line_and_the_problem() {
        let dup = format!("{GOOD}{}", GOOD.lines().next().unwrap());
        let f = file(&dup);
        let e = read_items(f.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("\"a\" appears twice"),
            "{e}"
        );

        let f = file(r#"{"id":"x","task":"t","prompt":"p","answers":["1"],"grade":"exact"}"#);
        let e = read_items(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("found \"exact\""), "{e}");

        let f = file(r#"{"id":"x","task":"t","prompt":"p","answers":["1"],"grade":"choice"}"#);
        let e = read_items(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("non-empty `choices`"), "{e}");

        let f = file("{\"id\":\"x\"}\n");
        let e = format!("{:#}", read_items(f.path(), None).unwrap_err());
        assert!(
            e.contains("line 1") && e.contains("expected a labelled item"),
            "{e}"
        );

        let f = file("\n");
        let e = read_items(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("no items"), "{e}");
    }
}
