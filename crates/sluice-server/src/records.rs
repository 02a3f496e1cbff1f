//! Records the gateway keeps on disk for later offline use (shadow samples for refitting a
//! policy): JSON lines in one directory per tenant, a file per UTC day, a new file when one
//! grows past its bound, and the oldest files deleted when a tenant's directory grows past its
//! own. Written off the request's path; a failed write is logged and counted, never an error
//! of a request.
//!
//! Layout: `<dir>/<tenant>/<YYYY-MM-DD>.<NNNN>.jsonl`; names sort in the order written. A
//! tenant name is percent-encoded where it holds anything but ASCII letters, digits, `_`
//! and `-`, so no name can leave the directory.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
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
    /// Each tenant's files, read from its directory once and kept up to date after: one
    /// writer at a time, and no directory listing per line.
    tenants: Mutex<HashMap<String, Files>>,
}

/// One tenant's files with their sizes, oldest first (the last is the one written to).
#[derive(Debug, Default)]
struct Files {
    files: Vec<(PathBuf, u64)>,
    total: u64,
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
            tenants: Mutex::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Append one JSON line for `tenant` at time `now`; returns the file written. Blocking:
    /// call it off the async runtime's workers.
    pub fn append(&self, tenant: &str, now: SystemTime, line: &str) -> io::Result<PathBuf> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let name = encode(tenant);
        let tenant_dir = self.config.dir.join(&name);
        let t = match tenants.entry(name) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                fs::create_dir_all(&tenant_dir).map_err(|err| at(&tenant_dir, err))?;
                let files = files(&tenant_dir)?;
                let total = files.iter().map(|(_, s)| s).sum();
                e.insert(Files { files, total })
            }
        };
        let day = civil_from_days(unix_day(now)).day_string();
        let adding = line.len() as u64 + 1;
        let per_file = (self.config.max_tenant_bytes / FILES).max(1);
        let fits = |(path, size): &(PathBuf, u64)| {
            file_name(path).starts_with(&day) && (*size == 0 || size + adding <= per_file)
        };
        if !t.files.last().is_some_and(fits) {
            // Today's next file: numbered after today's last, or the first of the day.
            let n = t
                .files
                .last()
                .filter(|(p, _)| file_name(p).starts_with(&day))
                .and_then(|(p, _)| file_name(p).split('.').nth(1)?.parse::<u32>().ok())
                .map_or(0, |n| n + 1);
            t.files
                .push((tenant_dir.join(format!("{day}.{n:04}.jsonl")), 0));
        }
        // Never empty here: the file to write was just ensured.
        let last = t.files.len() - 1;
        let path = t.files[last].0.clone();
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let create_dir = || fs::create_dir_all(&tenant_dir).map_err(|e| at(&tenant_dir, e));
        let mut f = match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => f,
            // Someone removed the directory under us: make it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dir()?;
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| at(&path, e))?
            }
            Err(e) => return Err(at(&path, e)),
        };
        f.write_all(&bytes).map_err(|e| at(&path, e))?;
        t.files[last].1 += adding;
        t.total += adding;
        // The oldest files go until the tenant is within its bound; the file just written
        // is kept whatever its size.
        while t.total > self.config.max_tenant_bytes && t.files.len() > 1 {
            let (oldest, size) = t.files.remove(0);
            match fs::remove_file(&oldest) {
                Ok(()) => {
                    tracing::info!(file = %oldest.display(), "records: deleted the oldest file to stay within the tenant's bound")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(at(&oldest, e)),
            }
            t.total -= size;
        }
        Ok(path)
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

fn file_name(p: &Path) -> &str {
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
