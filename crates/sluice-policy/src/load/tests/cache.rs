//! Tests of the `cache:` section and of the policy fingerprint.

use std::path::Path;
use std::time::Duration;

use super::{invalid, parse, MINIMAL};
use crate::load::fingerprint;
use crate::model::*;

/// `MINIMAL` followed by a `cache:` section with these lines (given without indentation).
fn with_cache(lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("  {l}\n")).collect();
    format!("{MINIMAL}cache:\n{body}")
}

fn cache(lines: &[&str]) -> CacheSettings {
    parse(&with_cache(lines)).unwrap().cache
}

#[test]
fn absent_or_empty_section_takes_defaults() {
    let defaults = CacheSettings {
        mode: CacheMode::Deterministic,
        ttl: Duration::from_secs(600),
        max_bytes: 64 * 1024 * 1024,
    };
    assert_eq!(CacheSettings::default(), defaults);
    assert_eq!(parse(MINIMAL).unwrap().cache, defaults);
    assert_eq!(
        parse(&format!("{MINIMAL}cache:\n")).unwrap().cache,
        defaults
    );
    assert_eq!(
        parse(&format!("{MINIMAL}cache: {{}}\n")).unwrap().cache,
        defaults
    );
    assert_eq!(cache(&["ttl: 1m"]).mode, CacheMode::Deterministic);
    assert_eq!(cache(&["mode: off"]).max_bytes, 64 * 1024 * 1024);
}

#[test]
fn every_key_is_read() {
    assert_eq!(
        cache(&["mode: always", "ttl: 90s", "max_bytes: 512KiB"]),
        CacheSettings {
            mode: CacheMode::Always,
            ttl: Duration::from_secs(90),
            max_bytes: 512 * 1024,
        }
    );
    assert_eq!(
        cache(&["mode: deterministic"]).mode,
        CacheMode::Deterministic
    );
    // `off` is a string in YAML 1.2, not the boolean false of YAML 1.1.
    assert_eq!(cache(&["mode: off"]).mode, CacheMode::Off);
    assert_eq!(cache(&["max_bytes: 1000000"]).max_bytes, 1_000_000);
    assert_eq!(cache(&["max_bytes: 2GB"]).max_bytes, 2_000_000_000);
    assert_eq!(cache(&["max_bytes: 1 GiB"]).max_bytes, 1 << 30);
}

#[test]
fn mode_names_match_the_file() {
    let names: Vec<&str> = CacheMode::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(names, ["deterministic", "always", "off"]);
}

#[test]
fn bad_max_bytes_names_key_line_expected_and_found() {
    let src = with_cache(&["mode: always", "max_bytes: 12 parsecs"]);
    assert_eq!(
        parse(&src).unwrap_err().to_string(),
        "policies/test.yaml: cache.max_bytes (line 10): expected a size in bytes like \
         65536, 500KB or 64MiB (units B, KB, MB, GB, KiB, MiB, GiB), found \"12 parsecs\""
    );
    let (key_path, _, message) = invalid(&with_cache(&["max_bytes: 0"]));
    assert_eq!(key_path, "cache.max_bytes");
    assert_eq!(message, "expected a size greater than zero, found 0");
    let (_, _, message) = invalid(&with_cache(&["max_bytes: -1"]));
    assert!(message.ends_with("found -1"), "{message}");
}

#[test]
fn bad_mode_and_ttl_name_their_key() {
    let (key_path, line, message) = invalid(&with_cache(&["mode: sometimes"]));
    assert_eq!((key_path.as_str(), line), ("cache.mode", Some(9)));
    assert_eq!(
        message,
        "expected a cache mode among deterministic, always, off, found \"sometimes\""
    );
    let (key_path, line, message) = invalid(&with_cache(&["mode: off", "ttl: 0s"]));
    assert_eq!((key_path.as_str(), line), ("cache.ttl", Some(10)));
    assert_eq!(
        message,
        "expected a duration greater than zero, found \"0s\""
    );
    let (key_path, _, message) = invalid(&with_cache(&["ttl: 600"]));
    assert_eq!(key_path, "cache.ttl");
    assert!(message.starts_with("expected a duration like"), "{message}");
}

#[test]
fn unknown_cache_key_is_rejected() {
    let (key_path, line, message) = invalid(&with_cache(&["max_size: 1MiB"]));
    assert_eq!((key_path.as_str(), line), ("cache.max_size", Some(9)));
    assert!(message.starts_with("unknown field `max_size`"), "{message}");
    assert!(message.contains("`max_bytes`"), "{message}");
}

#[test]
fn fingerprint_is_fnv1a_64() {
    // Published FNV-1a 64 test vectors: the value must not change between builds.
    assert_eq!(fingerprint(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fingerprint("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fingerprint("foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn fingerprint_follows_the_exact_text() {
    let a = parse(MINIMAL).unwrap();
    let b = parse(MINIMAL).unwrap();
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.fingerprint, fingerprint(MINIMAL));
    assert_ne!(a.fingerprint, 0);
    // One character differs, and the policy differs: the fingerprint changes.
    let changed = parse(&MINIMAL.replace("threshold: 0.5", "threshold: 0.6")).unwrap();
    assert_ne!(changed.fingerprint, a.fingerprint);
    // Only a comment differs: the policy is equal but for its fingerprint.
    let commented = parse(&format!("{MINIMAL}#")).unwrap();
    assert_ne!(commented.fingerprint, a.fingerprint);
    assert_eq!(
        Policy {
            fingerprint: a.fingerprint,
            text: a.text.clone(),
            ..commented
        },
        a
    );
    // The file name plays no part.
    let elsewhere = crate::parse_policy(MINIMAL, Path::new("other.yaml"), &|_| None).unwrap();
    assert_eq!(elsewhere.fingerprint, a.fingerprint);
}
