//! `cache:` — mode, time to live and size of a policy's response cache.

use std::sync::LazyLock;

use regex::Regex;

use super::{values, At, Invalid};
use crate::locate::KeyPath;
use crate::model::{CacheMode, CacheSettings};
use crate::raw::{RawCache, Scalar};

static SIZE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([0-9]+) ?(B|KB|MB|GB|KiB|MiB|GiB)?$").ok());

pub(super) fn cache(raw: &RawCache, path: &KeyPath) -> Result<CacheSettings, Invalid> {
    let defaults = CacheSettings::default();
    let mode = match raw.mode.as_deref() {
        None => defaults.mode,
        Some(name) => match CacheMode::ALL.into_iter().find(|m| m.as_str() == name) {
            Some(mode) => mode,
            None => {
                let names: Vec<&str> = CacheMode::ALL.iter().map(|m| m.as_str()).collect();
                return Err(format!(
                    "expected a cache mode among {}, found {name:?}",
                    names.join(", ")
                ))
                .at(&path.key("mode"));
            }
        },
    };
    let ttl = match &raw.ttl {
        None => defaults.ttl,
        Some(ttl) => values::duration(ttl).at(&path.key("ttl"))?,
    };
    let max_bytes = match &raw.max_bytes {
        None => defaults.max_bytes,
        Some(size) => byte_size(size).at(&path.key("max_bytes"))?,
    };
    Ok(CacheSettings {
        mode,
        ttl,
        max_bytes,
    })
}

/// A size greater than zero: integer bytes (`65536`) or a count with a unit, decimal
/// (`B`, `KB`, `MB`, `GB`) or binary (`KiB`, `MiB`, `GiB`), like `64MiB` or `500 KB`.
/// Units are case-sensitive, so `mb` and `Mb` are not guessed at.
fn byte_size(value: &Scalar) -> Result<u64, String> {
    let bad = || {
        format!(
            "expected a size in bytes like 65536, 500KB or 64MiB \
             (units B, KB, MB, GB, KiB, MiB, GiB), found {}",
            value.found()
        )
    };
    let caps = SIZE
        .as_ref()
        .and_then(|re| re.captures(value.text.trim()))
        .ok_or_else(bad)?;
    // A YAML number is only accepted as a plain count of bytes.
    if !value.is_string && caps.get(2).is_some() {
        return Err(bad());
    }
    let count: u64 = caps[1].parse().map_err(|_| bad())?;
    let unit: u64 = match caps.get(2).map_or("B", |m| m.as_str()) {
        "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => 1 << 30,
    };
    let bytes = count.checked_mul(unit).ok_or_else(bad)?;
    if bytes == 0 {
        return Err(format!(
            "expected a size greater than zero, found {}",
            value.found()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Scalar {
        Scalar {
            text: s.into(),
            is_string: true,
        }
    }

    fn number(s: &str) -> Scalar {
        Scalar {
            text: s.into(),
            is_string: false,
        }
    }

    #[test]
    fn sizes_with_every_unit() {
        let cases = [
            ("1", 1),
            ("65536", 65_536),
            ("12B", 12),
            ("3KB", 3_000),
            ("5MB", 5_000_000),
            ("2GB", 2_000_000_000),
            ("3KiB", 3_072),
            ("64MiB", 67_108_864),
            ("2GiB", 2_147_483_648),
            ("500 KB", 500_000),
        ];
        for (s, want) in cases {
            assert_eq!(byte_size(&text(s)), Ok(want), "{s}");
        }
        assert_eq!(byte_size(&number("1048576")), Ok(1_048_576));
    }

    #[test]
    fn bad_sizes_say_what_was_expected_and_found() {
        assert_eq!(
            byte_size(&text("12 parsecs")).unwrap_err(),
            "expected a size in bytes like 65536, 500KB or 64MiB \
             (units B, KB, MB, GB, KiB, MiB, GiB), found \"12 parsecs\""
        );
        for bad in [
            "", "MiB", "1.5MiB", "-1", "64mb", "64 mib", "64Mb", "64  MiB", "1e6", "0x10", "64TiB",
        ] {
            let err = byte_size(&text(bad)).unwrap_err();
            assert!(err.starts_with("expected a size in bytes"), "{bad}: {err}");
        }
        for bad in ["-1", "1.5", "true", "null"] {
            let err = byte_size(&number(bad)).unwrap_err();
            assert!(err.ends_with(&format!("found {bad}")), "{bad}: {err}");
        }
        // Overflow of u64 in the count or after multiplying by the unit.
        assert!(byte_size(&text("99999999999999999999")).is_err());
        assert!(byte_size(&text("17179869184GiB")).is_err());
    }

    #[test]
    fn zero_is_rejected() {
        let expected = "expected a size greater than zero, found";
        assert_eq!(
            byte_size(&number("0")).unwrap_err(),
            format!("{expected} 0")
        );
        assert_eq!(
            byte_size(&text("0MiB")).unwrap_err(),
            format!("{expected} \"0MiB\"")
        );
    }
}
