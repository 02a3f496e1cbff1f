//! Noticing changes to the policy file or directory, by polling a content fingerprint.
//!
//! Polling rather than inotify is deliberate: it works on every filesystem, over network
//! mounts, and in containers whose ConfigMap volumes change by swapping symlinks (which
//! inotify watches on the files themselves miss). Every path is read through its symlinks.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// A content fingerprint of a policy path: for a file, its bytes; for a directory, the names
/// and bytes of its `*.yaml`/`*.yml` files (sorted by name; other files and subdirectories
/// ignored). Changes in any of them (added, removed, edited, renamed) change the fingerprint.
///
/// The directory selection is the one `PolicySet::load` makes: entries directly in the
/// directory, named `*.yaml`/`*.yml`, that are files once symlinks are followed. Symlinks are
/// followed everywhere, so a Kubernetes ConfigMap volume (`default.yaml -> ..data/default.yaml`,
/// `..data -> ..2026_v1`) fingerprints by the content it currently points at.
///
/// The hash is 64-bit FNV-1a over length-prefixed names and contents: stable across processes
/// and platforms, and not keyed (an accidental collision would only delay one reload).
///
/// Errors: the path, or a file in the directory, cannot be read (missing, permissions, or
/// removed between listing and reading).
pub fn fingerprint(path: &Path) -> std::io::Result<u64> {
    let mut hash = Fnv1a::new();
    if std::fs::metadata(path)?.is_dir() {
        hash.write_part(b"dir");
        for (name, file) in yaml_files(path)? {
            hash.write_part(name.as_encoded_bytes());
            hash.write_part(&std::fs::read(file)?);
        }
    } else {
        hash.write_part(b"file");
        hash.write_part(&std::fs::read(path)?);
    }
    Ok(hash.finish())
}

/// The `*.yaml`/`*.yml` files directly in `dir` (symlinks followed), sorted by name.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<(std::ffi::OsString, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        // `is_file` follows symlinks; a dangling one is skipped, as the loader skips it.
        if is_yaml && path.is_file() {
            files.push((entry.file_name(), path));
        }
    }
    files.sort();
    Ok(files)
}

/// 64-bit FNV-1a (<http://www.isthe.com/chongo/tech/comp/fnv/>).
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// `bytes` preceded by their length, so that parts cannot run into each other
    /// (`a.yaml` + `bc` differs from `a.yamlb` + `c`).
    fn write_part(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Poll `path` every `interval`; when its fingerprint changes and then stays the same for one
/// more interval (a debounce, so a half-written file is not loaded), call `on_change()`.
/// An unreadable path (e.g. a directory mid-rename) is skipped until readable, logged at warn
/// once per episode. Runs until `shutdown` resolves. Returns a JoinHandle.
///
/// Details:
/// - The starting fingerprint is taken before this function returns, so any change made
///   after it returns is noticed. If the path is unreadable then, its first readable (and
///   stable) content counts as a change.
/// - A change that is reverted before it settles (same fingerprint as before) calls nothing.
/// - Fingerprints are computed, and `on_change` is called, on tokio's blocking pool, so a
///   slow disk or a slow reload does not stall the runtime. Calls never overlap: polling
///   resumes once `on_change` has returned. A panic in `on_change` is logged and polling
///   goes on.
/// - An `interval` of zero is treated as 1 ms.
///
/// Must be called inside a tokio runtime.
pub fn spawn_watcher<F>(
    path: PathBuf,
    interval: Duration,
    on_change: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()>
where
    F: Fn() + Send + Sync + 'static,
{
    let interval = interval.max(Duration::from_millis(1));
    let start = fingerprint(&path);
    let mut debounce = Debounce::new(start.as_ref().ok().copied());
    let mut warned = false;
    if let Err(e) = &start {
        warn_unreadable(&path, e);
        warned = true;
    }
    let path = Arc::new(path);
    let on_change = Arc::new(on_change);
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the start was fingerprinted above
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            let p = path.clone();
            let polled = match tokio::task::spawn_blocking(move || fingerprint(&p)).await {
                Ok(result) => result,
                Err(e) => Err(std::io::Error::other(e)),
            };
            let fp = match polled {
                Ok(fp) => {
                    if warned {
                        tracing::info!(path = %path.display(), "policy path readable again");
                        warned = false;
                    }
                    Some(fp)
                }
                Err(e) => {
                    if !warned {
                        warn_unreadable(&path, &e);
                        warned = true;
                    }
                    None
                }
            };
            if debounce.observe(fp) {
                let f = on_change.clone();
                let call = tokio::task::spawn_blocking(move || f());
                // Stop waiting for the callback on shutdown; it finishes on its own.
                tokio::select! {
                    biased;
                    () = &mut shutdown => return,
                    done = call => if let Err(e) = done {
                        tracing::error!(path = %path.display(), error = %e, "policy change handler failed");
                    },
                }
            }
        }
    })
}

fn warn_unreadable(path: &Path, e: &std::io::Error) {
    tracing::warn!(
        path = %path.display(),
        error = %e,
        "policy path unreadable; changes are picked up once it is readable again"
    );
}

/// The debounce state: the fingerprint last acted on, and a new one waiting to be confirmed.
#[derive(Debug)]
struct Debounce {
    settled: Option<u64>,
    pending: Option<u64>,
}

impl Debounce {
    fn new(start: Option<u64>) -> Self {
        Debounce {
            settled: start,
            pending: None,
        }
    }

    /// Feed one poll (`None`: unreadable); true when a change has just settled.
    fn observe(&mut self, fp: Option<u64>) -> bool {
        let Some(fp) = fp else {
            // Wait for two equal readable polls after the path comes back.
            self.pending = None;
            return false;
        };
        if self.settled == Some(fp) {
            self.pending = None;
            false
        } else if self.pending == Some(fp) {
            self.settled = Some(fp);
            self.pending = None;
            true
        } else {
            self.pending = Some(fp);
            false
        }
    }
}

#[cfg(test)]
mod tests;
