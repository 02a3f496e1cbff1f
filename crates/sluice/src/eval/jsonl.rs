//! JSON-lines files of the evaluation: reading records with their line numbers, matching
//! them to the items by id, and writing records as they are made.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::data::Item;

/// Every non-blank line of `path` parsed as a `T`, with its 1-based line number; a line that
/// does not parse is an error naming the file, the line and `what` was expected.
pub fn read<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<Vec<(usize, T)>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.with_context(|| format!("{} line {}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: expected {what}", path.display(), i + 1))?;
        out.push((i + 1, record));
    }
    Ok(out)
}

/// The records for exactly these items, in their order (records of other items are ignored,
/// so one file serves any `--limit`); items without one are an error counting and naming
/// them, with `fix` as the way out.
pub fn for_items<T>(
    mut by_id: HashMap<String, T>,
    items: &[Item],
    path: &Path,
    fix: &str,
) -> anyhow::Result<Vec<T>> {
    let missing: Vec<&str> = items
        .iter()
        .filter(|it| !by_id.contains_key(&it.id))
        .map(|it| it.id.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} has nothing for {} of the {} items (first: {}); {fix}",
            path.display(),
            missing.len(),
            items.len(),
            missing[..missing.len().min(3)].join(", ")
        );
    }
    Ok(items.iter().filter_map(|it| by_id.remove(&it.id)).collect())
}

/// Writes one record a line and flushes it, so an interrupted run keeps what it made.
pub struct Writer(std::io::BufWriter<std::fs::File>);

impl Writer {
    /// `None` when there is no path.
    pub fn create(path: Option<&Path>) -> anyhow::Result<Option<Self>> {
        path.map(|p| {
            std::fs::File::create(p)
                .map(|f| Writer(std::io::BufWriter::new(f)))
                .with_context(|| format!("cannot write {}", p.display()))
        })
        .transpose()
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> anyhow::Result<()> {
        writeln!(self.0, "{}", serde_json::to_string(record)?)?;
        self.0.flush()?;
        Ok(())
    }
}
