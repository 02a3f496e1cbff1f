//! Tests of the per-tenant record files: layout, daily and size rotation, the tenant's bound.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

/// A fresh directory for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sluice-records-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn log(dir: &Path, max_tenant_bytes: u64) -> RecordLog {
    RecordLog::open(RecordsConfig {
        dir: dir.to_path_buf(),
        max_tenant_bytes,
    })
    .unwrap()
}

/// 2026-12-06T12:00:00Z plus `days`.
fn day(days: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_558_400 + days * 86_400)
}

fn names(dir: &Path) -> Vec<String> {
    files(dir)
        .unwrap()
        .iter()
        .map(|(p, _)| file_name(p).to_owned())
        .collect()
}

#[test]
fn lines_go_to_the_tenants_file_of_the_day() {
    let s = Scratch::new("layout");
    let l = log(&s.0, 1 << 20);
    let a = l.append("acme", day(0), r#"{"n":1}"#).unwrap();
    let b = l.append("acme", day(0), r#"{"n":2}"#).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, s.0.join("acme").join("2026-12-06.0000.jsonl"));
    assert_eq!(fs::read_to_string(&a).unwrap(), "{\"n\":1}\n{\"n\":2}\n");
    let c = l.append("acme", day(1), r#"{"n":3}"#).unwrap();
    assert_eq!(
        file_name(&c),
        "2026-12-07.0000.jsonl",
        "a new UTC day, a new file"
    );
    let other = l.append("globex", day(0), "{}").unwrap();
    assert_eq!(other, s.0.join("globex").join("2026-12-06.0000.jsonl"));
}

#[test]
fn a_full_file_is_followed_by_the_next_and_the_oldest_go_past_the_bound() {
    let s = Scratch::new("bound");
    // 8 files of 100 bytes each; lines of 40 bytes (with the newline): two a file.
    let l = log(&s.0, 800);
    let line = "x".repeat(39);
    for _ in 0..6 {
        l.append("t", day(0), &line).unwrap();
    }
    let dir = s.0.join("t");
    assert_eq!(
        names(&dir),
        [
            "2026-12-06.0000.jsonl",
            "2026-12-06.0001.jsonl",
            "2026-12-06.0002.jsonl"
        ]
    );
    for _ in 0..40 {
        l.append("t", day(1), &line).unwrap();
    }
    let kept = files(&dir).unwrap();
    let total: u64 = kept.iter().map(|(_, s)| s).sum();
    assert!(total <= 800, "{total} bytes kept");
    assert!(
        total > 800 - 80,
        "only what the bound needs is deleted: {total}"
    );
    assert!(
        names(&dir).iter().all(|n| n.starts_with("2026-12-07")),
        "the oldest went first: {:?}",
        names(&dir)
    );
    assert_eq!(names(&dir).last().unwrap(), "2026-12-07.0019.jsonl");
}

#[test]
fn a_line_longer_than_the_bound_is_kept_alone() {
    let s = Scratch::new("long");
    let l = log(&s.0, 80);
    l.append("t", day(0), "short").unwrap();
    let long = l.append("t", day(0), &"y".repeat(200)).unwrap();
    assert_eq!(
        names(&s.0.join("t")),
        [file_name(&long)],
        "the short one made room"
    );
}

#[test]
fn tenant_names_cannot_leave_the_directory() {
    assert_eq!(encode("acme-prod_1"), "acme-prod_1");
    assert_eq!(encode("../etc"), "%2E%2E%2Fetc");
    assert_eq!(encode("a b"), "a%20b");
    assert_eq!(encode(""), "%");
    let s = Scratch::new("encode");
    let p = log(&s.0, 1 << 20).append("../x", day(0), "{}").unwrap();
    assert!(p.starts_with(&s.0), "{}", p.display());
}

#[test]
fn an_unwritable_directory_is_refused_at_open_with_its_path() {
    let s = Scratch::new("unwritable");
    fs::create_dir_all(&s.0).unwrap();
    let file = s.0.join("a-file");
    fs::write(&file, "").unwrap();
    let e = RecordLog::open(RecordsConfig {
        dir: file.join("sub"),
        max_tenant_bytes: 1,
    })
    .unwrap_err();
    assert!(e.to_string().contains("a-file/sub"), "{e}");
}
