//! `sluice distill export`: gather the fine-tuning examples the gateway wrote
//! (`--distill-dir`) into one training file and one validation file: only days from `--since`,
//! every line checked against the chat fine-tuning format, exact repeats dropped, the split
//! decided by each example's content so it is the same on every run.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sluice_router::eval::finetune::check;

/// What to export.
#[derive(Debug)]
pub struct Export<'a> {
    pub dir: &'a Path,
    /// Only this tenant's directory (as the gateway names it); `None`: every tenant.
    pub tenant: Option<&'a str>,
    /// `YYYY-MM-DD`: only files of this UTC day and later.
    pub since: Option<&'a str>,
    pub train: &'a Path,
    pub validation: Option<&'a Path>,
    /// Share of examples that go to the validation file.
    pub validation_share: f64,
}

/// What an export found and wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub files: usize,
    pub train: usize,
    pub validation: usize,
    pub repeated: usize,
    pub invalid: usize,
    /// The first invalid line: where and why.
    pub first_invalid: Option<String>,
}

fn check_since(since: &str) -> anyhow::Result<()> {
    let b = since.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        bail!("--since: expected a UTC day as YYYY-MM-DD, found {since:?}");
    }
    Ok(())
}

/// The day files to read, in name (so time) order within each tenant.
fn day_files(e: &Export<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let tenants: Vec<PathBuf> = match e.tenant {
        Some(t) => vec![e.dir.join(sluice_server::records::encode(t))],
        None => {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(e.dir)
                .with_context(|| format!("cannot read {}", e.dir.display()))?
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            dirs
        }
    };
    let mut out = Vec::new();
    for dir in tenants {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|d| d.ok().map(|d| d.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                e.since
                    .is_none_or(|s| name.get(..10).is_some_and(|day| day >= s))
            })
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// Writes `lines` to `path` through a temporary file, so a failed export leaves no half file.
fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?,
    );
    for l in lines {
        writeln!(f, "{l}").with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    f.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn export(e: &Export<'_>) -> anyhow::Result<Exported> {
    if let Some(s) = e.since {
        check_since(s)?;
    }
    if !(0.0..1.0).contains(&e.validation_share) {
        bail!(
            "--validation-share: expected a share in [0, 1), found {}",
            e.validation_share
        );
    }
    if e.validation.is_none() && e.validation_share > 0.0 {
        bail!("--validation FILE is needed for a validation share above 0 (or give --validation-share 0)");
    }
    let files = day_files(e)?;
    if files.is_empty() {
        bail!(
            "{}: no examples files{}{} (written by `sluice serve --distill-dir`)",
            e.dir.display(),
            e.tenant
                .map(|t| format!(" of tenant {t:?}"))
                .unwrap_or_default(),
            e.since.map(|s| format!(" since {s}")).unwrap_or_default()
        );
    }
    let mut report = Exported {
        files: files.len(),
        ..Exported::default()
    };
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let verdict = serde_json::from_str::<serde_json::Value>(line)
                .map_err(|err| format!("not JSON: {err}"))
                .and_then(|v| check(&v).map(|()| v));
            let value = match verdict {
                Ok(v) => v,
                Err(why) => {
                    report.invalid += 1;
                    report
                        .first_invalid
                        .get_or_insert_with(|| format!("{} line {}: {why}", file.display(), i + 1));
                    continue;
                }
            };
            // One form per example, so key order or spacing never hides a repeat.
            let canonical = value.to_string();
            let mut h = DefaultHasher::new();
            canonical.hash(&mut h);
            let hash = h.finish();
            if !seen.insert(hash) {
                report.repeated += 1;
                continue;
            }
            // The example's own hash decides its side: stable across runs and files.
            if ((hash % 10_000) as f64) < e.validation_share * 10_000.0 {
                validation.push(canonical);
            } else {
                train.push(canonical);
            }
        }
    }
    if train.is_empty() {
        bail!(
            "no valid examples to train on in {} files ({} invalid{})",
            report.files,
            report.invalid,
            report
                .first_invalid
                .as_deref()
                .map(|w| format!("; first: {w}"))
                .unwrap_or_default()
        );
    }
    write_lines(e.train, &train)?;
    if let Some(v) = e.validation {
        write_lines(v, &validation)?;
    }
    report.train = train.len();
    report.validation = validation.len();
    Ok(report)
}

#[cfg(test)]
mod tests;
