//! Tests of the policy path fingerprint and the polling watcher.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::oneshot;

use super::*;

/// The watchers' poll interval in these tests.
const TICK: Duration = Duration::from_millis(20);

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sluice-watch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.path(name)).unwrap();
    }

    fn fingerprint(&self) -> u64 {
        fingerprint(&self.0).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running watcher that counts its calls.
struct Watched {
    calls: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Watched {
    fn start(path: &Path) -> Watched {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = spawn_watcher(
            path.to_path_buf(),
            TICK,
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
            async move {
                let _ = stopped.await;
            },
        );
        Watched {
            calls,
            stop: Some(stop),
            task,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Wait until there have been `n` calls (5 s at most), then a while longer, and check
    /// that there were exactly `n`.
    async fn expect_calls(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.calls() < n && Instant::now() < deadline {
            tokio::time::sleep(TICK / 2).await;
        }
        quiet().await;
        assert_eq!(self.calls(), n);
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("the watcher stops on shutdown")
            .expect("the watcher task does not panic");
    }
}

/// Long enough for a watcher to have noticed and confirmed any change (ten polls).
async fn quiet() {
    tokio::time::sleep(TICK * 10).await;
}

// --- fingerprints ---

#[test]
fn fnv1a_matches_the_reference_vectors() {
    let hash = |bytes: &[u8]| {
        let mut h = Fnv1a::new();
        h.write(bytes);
        h.finish()
    };
    assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn a_file_fingerprints_by_its_bytes() {
    let dir = TempDir::new("fp-file");
    let file = dir.write("default.yaml", "a: 1\n");
    let first = fingerprint(&file).unwrap();
    dir.write("default.yaml", "a: 1\n");
    assert_eq!(fingerprint(&file).unwrap(), first);
    dir.write("default.yaml", "a: 2\n");
    assert_ne!(fingerprint(&file).unwrap(), first);
    // The file's name does not matter, and neither does its extension.
    let other = dir.write("copy.txt", "a: 1\n");
    assert_eq!(fingerprint(&other).unwrap(), first);
}

#[test]
fn a_directory_fingerprints_by_its_yaml_names_and_bytes() {
    let dir = TempDir::new("fp-dir");
    dir.write("a.yaml", "a: 1\n");
    dir.write("b.yml", "b: 1\n");
    let start = dir.fingerprint();

    dir.write("b.yml", "b: 2\n");
    let edited = dir.fingerprint();
    assert_ne!(edited, start);
    dir.write("b.yml", "b: 1\n");
    assert_eq!(dir.fingerprint(), start, "back to the same bytes");

    dir.write("c.yaml", "c: 1\n");
    let added = dir.fingerprint();
    assert_ne!(added, start);
    dir.remove("c.yaml");
    assert_eq!(dir.fingerprint(), start);

    std::fs::rename(dir.path("a.yaml"), dir.path("z.yaml")).unwrap();
    assert_ne!(dir.fingerprint(), start, "renamed");

    let empty = TempDir::new("fp-dir-empty");
    assert_ne!(empty.fingerprint(), start);
}

#[test]
fn a_directory_ignores_other_files_and_subdirectories() {
    let dir = TempDir::new("fp-ignored");
    dir.write("a.yaml", "a: 1\n");
    let start = dir.fingerprint();

    dir.write("README.md", "notes");
    dir.write("a.yaml.swp", "editor");
    dir.write("yaml", "no extension");
    std::fs::create_dir(dir.path("sub.yaml")).unwrap();
    std::fs::write(dir.path("sub.yaml").join("b.yaml"), "b: 1\n").unwrap();
    assert_eq!(dir.fingerprint(), start);
}

#[test]
fn name_and_content_boundaries_do_not_collide() {
    let one = TempDir::new("fp-boundary-1");
    one.write("a.yaml", "bc");
    let two = TempDir::new("fp-boundary-2");
    two.write("a.yamlb", "c"); // not even listed, but also: not "a.yaml" + "bc"
    two.write("a.yml", "bc");
    assert_ne!(one.fingerprint(), two.fingerprint());
}

#[test]
fn a_missing_path_is_an_error() {
    let dir = TempDir::new("fp-missing");
    assert!(fingerprint(&dir.path("nope.yaml")).is_err());
    assert!(fingerprint(&dir.path("nope")).is_err());
}

/// Lay out a Kubernetes ConfigMap volume version: `..<version>/default.yaml`, then point
/// `..data` at it with an atomic rename, as the kubelet does.
#[cfg(unix)]
fn configmap_version(dir: &TempDir, version: &str, content: &str) {
    let data = dir.path(&format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("default.yaml"), content).unwrap();
    let tmp = dir.path("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path("..data")).unwrap();
}

#[cfg(unix)]
fn configmap(name: &str, content: &str) -> TempDir {
    let dir = TempDir::new(name);
    configmap_version(&dir, "2026_v1", content);
    std::os::unix::fs::symlink("..data/default.yaml", dir.path("default.yaml")).unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn a_configmap_volume_fingerprints_like_a_plain_directory() {
    let mounted = configmap("fp-configmap", "a: 1\n");
    let plain = TempDir::new("fp-configmap-plain");
    plain.write("default.yaml", "a: 1\n");
    assert_eq!(mounted.fingerprint(), plain.fingerprint());
    // Watching the file inside the volume reads through both links.
    assert_eq!(
        fingerprint(&mounted.path("default.yaml")).unwrap(),
        fingerprint(&plain.path("default.yaml")).unwrap()
    );
}

// --- debounce ---

#[test]
fn a_change_settles_after_two_equal_polls() {
    let mut d = Debounce::new(Some(1));
    assert!(!d.observe(Some(1)));
    assert!(!d.observe(Some(2)), "first sight of a change");
    assert!(d.observe(Some(2)), "confirmed");
    assert!(!d.observe(Some(2)), "already acted on");

    // Still being written: each poll differs.
    assert!(!d.observe(Some(3)));
    assert!(!d.observe(Some(4)));
    assert!(d.observe(Some(4)));

    // Reverted before it settled.
    assert!(!d.observe(Some(5)));
    assert!(!d.observe(Some(4)));
    assert!(!d.observe(Some(4)));
}

#[test]
fn an_unreadable_poll_restarts_the_debounce() {
    let mut d = Debounce::new(Some(1));
    assert!(!d.observe(Some(2)));
    assert!(!d.observe(None));
    assert!(!d.observe(Some(2)));
    assert!(d.observe(Some(2)));

    // Unreadable at the start: the first stable content is a change.
    let mut d = Debounce::new(None);
    assert!(!d.observe(None));
    assert!(!d.observe(Some(7)));
    assert!(d.observe(Some(7)));
}

// --- the watcher ---

#[tokio::test]
async fn an_edit_calls_once_after_the_debounce() {
    let dir = TempDir::new("edit");
    dir.write("default.yaml", "a: 1\n");
    let w = Watched::start(&dir.0);
    dir.write("default.yaml", "a: 2\n");
    w.expect_calls(1).await;
    dir.write("default.yaml", "a: 3\n");
    w.expect_calls(2).await;
    w.stop().await;
}

#[tokio::test]
async fn an_edited_single_file_calls_once() {
    let dir = TempDir::new("edit-file");
    let file = dir.write("policy.yaml", "a: 1\n");
    let w = Watched::start(&file);
    dir.write("policy.yaml", "a: 2\n");
    w.expect_calls(1).await;
    w.stop().await;
}

#[tokio::test]
async fn quick_successive_edits_call_once() {
    let dir = TempDir::new("quick");
    dir.write("default.yaml", "a: 1\n");
    let w = Watched::start(&dir.0);
    dir.write("default.yaml", "a: 2\n");
    dir.write("default.yaml", "a: 3\n");
    w.expect_calls(1).await;
    w.stop().await;
}

#[tokio::test]
async fn adding_and_removing_a_yaml_file_calls() {
    let dir = TempDir::new("add-remove");
    dir.write("default.yaml", "a: 1\n");
    let w = Watched::start(&dir.0);
    dir.write("strict.yml", "b: 1\n");
    w.expect_calls(1).await;
    dir.remove("strict.yml");
    w.expect_calls(2).await;
    w.stop().await;
}

#[tokio::test]
async fn touching_a_non_yaml_file_does_not_call() {
    let dir = TempDir::new("non-yaml");
    dir.write("default.yaml", "a: 1\n");
    let w = Watched::start(&dir.0);
    dir.write("README.md", "notes");
    dir.write("default.yaml.bak", "a: 2\n");
    std::fs::create_dir(dir.path("sub")).unwrap();
    std::fs::write(dir.path("sub").join("x.yaml"), "x: 1\n").unwrap();
    quiet().await;
    assert_eq!(w.calls(), 0);
    w.stop().await;
}

#[tokio::test]
async fn rewriting_the_same_bytes_does_not_call() {
    let dir = TempDir::new("same-bytes");
    dir.write("default.yaml", "a: 1\n");
    let w = Watched::start(&dir.0);
    for _ in 0..3 {
        dir.write("default.yaml", "a: 1\n");
        tokio::time::sleep(TICK).await;
    }
    quiet().await;
    assert_eq!(w.calls(), 0);
    w.stop().await;
}

#[tokio::test]
async fn an_unreadable_path_is_skipped_until_readable() {
    let dir = TempDir::new("unreadable");
    let file = dir.write("policy.yaml", "a: 1\n");
    let w = Watched::start(&file);
    dir.remove("policy.yaml");
    quiet().await;
    assert_eq!(w.calls(), 0);
    dir.write("policy.yaml", "a: 2\n");
    w.expect_calls(1).await;
    w.stop().await;
}

#[tokio::test]
async fn a_path_restored_unchanged_does_not_call() {
    let dir = TempDir::new("restored");
    let file = dir.write("policy.yaml", "a: 1\n");
    let w = Watched::start(&file);
    std::fs::rename(&file, dir.path("moved")).unwrap();
    quiet().await;
    std::fs::rename(dir.path("moved"), &file).unwrap();
    quiet().await;
    assert_eq!(w.calls(), 0);
    w.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_calls() {
    let dir = configmap("configmap", "a: 1\n");
    let watch_dir = Watched::start(&dir.0);
    let watch_file = Watched::start(&dir.path("default.yaml"));
    configmap_version(&dir, "2026_v2", "a: 2\n");
    std::fs::remove_dir_all(dir.path("..2026_v1")).unwrap();
    watch_dir.expect_calls(1).await;
    assert_eq!(watch_file.calls(), 1);
    watch_dir.stop().await;
    watch_file.stop().await;
}

#[tokio::test]
async fn shutdown_stops_the_task() {
    let dir = TempDir::new("shutdown");
    dir.write("default.yaml", "a: 1\n");
    let w = Watched::start(&dir.0);
    let calls = w.calls.clone();
    w.stop().await;
    dir.write("default.yaml", "a: 2\n");
    quiet().await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_zero_interval_does_not_panic() {
    let dir = TempDir::new("zero-interval");
    dir.write("default.yaml", "a: 1\n");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = spawn_watcher(dir.0.clone(), Duration::ZERO, || {}, async move {
        let _ = stopped.await;
    });
    tokio::time::sleep(TICK).await;
    let _ = stop.send(());
    task.await.unwrap();
}
