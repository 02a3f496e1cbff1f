//! Records the gateway keeps on disk for later offline use (shadow samples for refitting a
//! policy): JSON lines in one directory per tenant, a file per UTC day, a new file when one
//! grows past its bound, and the oldest files deleted when a tenant's directory grows past its
//! own. Written off the request's path; a failed write is logged and counted, never an error
//! of a request.
//!
//! Layout: `<dir>/<tenant>/<YYYY-MM-DD>.<NNNN>.jsonl`; names sort in the order written. A
//! tenant name is percent-encoded where it holds anything but ASCII letters, digits, `_`
//! and `-`, so no name can leave the directory.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::budget::civil::{civil_from_days, unix_day};

/// Where and how much to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsConfig {
    pub dir: PathBuf,
    /// Most bytes kept per tenant; the oldest files go first.
    pub max_tenant_bytes: u64,
}

/// Files per tenant the bound is split over: a file is closed at `max_tenant_bytes / FILES`.
const FILES: u64 = 8;

/// A directory of per-tenant JSONL files.
#[derive(Debug)]
pub struct RecordLog {
    config: RecordsConfig,
    /// One writer at a time: appends, rotation and deletion see one state.
    lock: Mutex<()>,
}

impl RecordLog {
    /// Creates the directory when missing and checks it can be written.
    pub fn open(config: RecordsConfig) -> io::Result<Self> {
        fs::create_dir_all(&config.dir).map_err(|e| at(&config.dir, e))?;
        let probe = config.dir.join(".sluice-write-check");
        fs::write(&probe, b"").map_err(|e| at(&config.dir, e))?;
        let _ = fs::remove_file(&probe);
        Ok(Self {
            config,
            lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Append one JSON line for `tenant` at time `now`; returns the file written. Blocking:
    /// call it off the async runtime's workers.
    pub fn append(&self, tenant: &str, now: SystemTime, line: &str) -> io::Result<PathBuf> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let tenant_dir = self.config.dir.join(encode(tenant));
        fs::create_dir_all(&tenant_dir).map_err(|e| at(&tenant_dir, e))?;
        let day = civil_from_days(unix_day(now)).day_string();
        let path = self.current_file(&tenant_dir, &day, line.len() as u64 + 1)?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| at(&path, e))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        f.write_all(&bytes).map_err(|e| at(&path, e))?;
        self.bound(&tenant_dir, &path)?;
        Ok(path)
    }

    /// Today's newest file, or the next one when adding `adding` bytes would pass the per-file
    /// bound (a line longer than the bound gets a file of its own).
    fn current_file(&self, tenant_dir: &Path, day: &str, adding: u64) -> io::Result<PathBuf> {
        let per_file = (self.config.max_tenant_bytes / FILES).max(1);
        let today: Vec<(PathBuf, u64)> = files(tenant_dir)?
            .into_iter()
            .filter(|(p, _)| name(p).starts_with(day))
            .collect();
        let Some((last, size)) = today.last() else {
            return Ok(tenant_dir.join(format!("{day}.0000.jsonl")));
        };
        if *size == 0 || size + adding <= per_file {
            return Ok(last.clone());
        }
        let n: u32 = name(last)
            .split('.')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(tenant_dir.join(format!("{day}.{:04}.jsonl", n + 1)))
    }

    /// Delete the oldest files until the tenant's total is within its bound; the file just
    /// written is kept whatever its size.
    fn bound(&self, tenant_dir: &Path, keep: &Path) -> io::Result<()> {
        let all = files(tenant_dir)?;
        let mut total: u64 = all.iter().map(|(_, s)| s).sum();
        for (path, size) in &all {
            if total <= self.config.max_tenant_bytes || path == keep {
                break;
            }
            fs::remove_file(path).map_err(|e| at(path, e))?;
            tracing::info!(file = %path.display(), "records: deleted the oldest file to stay within the tenant's bound");
            total -= size;
        }
        Ok(())
    }
}

/// The `*.jsonl` files of a directory with their sizes, oldest first.
fn files(dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| at(dir, e))? {
        let entry = entry.map_err(|e| at(dir, e))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let size = entry.metadata().map_err(|e| at(&path, e))?.len();
            out.push((path, size));
        }
    }
    out.sort();
    Ok(out)
}

fn name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The error, naming the path.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A tenant's directory name: ASCII letters, digits, `_` and `-` as they are, every other
/// byte as `%XX`; the empty name is `%`.
pub fn encode(tenant: &str) -> String {
    if tenant.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(tenant.len());
    for b in tenant.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
