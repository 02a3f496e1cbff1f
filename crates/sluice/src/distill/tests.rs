//! Exporting the gateway's examples: days, tenants, repeats, invalid lines, the split.

use super::*;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sluice-distill-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, tenant: &str, name: &str, lines: &[String]) {
        let d = self.0.join(tenant);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), lines.join("\n") + "\n").unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn example(q: &str, a: &str) -> String {
    format!(
        r#"{{"messages":[{{"role":"user","content":"{q}"}},{{"role":"assistant","content":"{a}"}}]}}"#
    )
}

fn read(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn examples_since_a_day_are_checked_deduplicated_and_split() {
    let s = Scratch::new("export");
    let many: Vec<String> = (0..200).map(|i| example(&format!("q{i}"), "a")).collect();
    s.file("acme", "2026-12-05.0000.jsonl", &[example("old", "a")]);
    s.file("acme", "2026-12-06.0000.jsonl", &many[..100]);
    // A repeat of an earlier example, and a line cut by a crash mid-write.
    let mut later = many[100..].to_vec();
    later.push(many[0].clone());
    later.push(r#"{"messages":[{"role":"user","#.into());
    s.file("acme", "2026-12-07.0000.jsonl", &later);
    s.file("globex", "2026-12-06.0000.jsonl", &[example("other", "b")]);
    let (train, val) = (s.0.join("train.jsonl"), s.0.join("val.jsonl"));
    let e = Export {
        dir: &s.0,
        tenant: Some("acme"),
        since: Some("2026-12-06"),
        train: &train,
        validation: Some(&val),
        validation_share: 0.1,
    };
    let r = export(&e).unwrap();
    assert_eq!((r.files, r.repeated, r.invalid), (2, 1, 1), "{r:?}");
    assert!(
        r.first_invalid
            .as_deref()
            .unwrap()
            .contains("2026-12-07.0000.jsonl line 102"),
        "{r:?}"
    );
    assert_eq!(r.train + r.validation, 200);
    // Binomial(200, 0.1): 20 expected; 5..=40 is beyond four standard deviations.
    assert!((5..=40).contains(&r.validation), "{r:?}");
    let (t, v) = (read(&train), read(&val));
    assert_eq!((t.len(), v.len()), (r.train, r.validation));
    for ex in t.iter().chain(&v) {
        assert_eq!(check(ex), Ok(()));
        assert_ne!(ex["messages"][0]["content"], "old");
        assert_ne!(ex["messages"][0]["content"], "other");
    }
    // The same files give the same split.
    let again = export(&e).unwrap();
    assert_eq!(again, r);
    assert_eq!(read(&val), v);

    // Every tenant, every day.
    let all = export(&Export {
        tenant: None,
        since: None,
        ..e
    })
    .unwrap();
    assert_eq!(all.train + all.validation, 202);
}

#[test]
fn bad_arguments_and_empty_directories_say_what_is_wrong() {
    let s = Scratch::new("bad");
    let out = s.0.join("t.jsonl");
    let base = Export {
        dir: &s.0,
        tenant: None,
        since: None,
        train: &out,
        validation: None,
        validation_share: 0.0,
    };
    let e = export(&Export {
        since: Some("6 Dec"),
        ..base
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("YYYY-MM-DD") && e.contains("\"6 Dec\""), "{e}");
    let e = export(&Export {
        validation_share: 0.2,
        ..base
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("--validation FILE"), "{e}");
    let e = export(&base).unwrap_err().to_string();
    assert!(e.contains("no examples files"), "{e}");
    s.file("acme", "2026-12-06.0000.jsonl", &["{}".into()]);
    let e = export(&base).unwrap_err().to_string();
    assert!(e.contains("1 invalid") && e.contains("line 1"), "{e}");
    assert!(!out.exists(), "nothing written when nothing is valid");
}
