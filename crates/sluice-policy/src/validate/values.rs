//! Checks and parsers for single values: names, durations, URLs, numbers.
//!
//! Each returns a user-facing message ("expected …, found …") on failure; the
//! caller adds the key path.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::raw::Scalar;

static NAME: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new("^[a-z0-9][a-z0-9_-]*$").ok());
static DURATION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([0-9]+)(?:\.([0-9]+))?(ms|s|m|h)$").ok());
static URL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^https?://[^\s/?#]+(?:/[^\s?#]*)?$").ok());

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(s))
}

/// A policy or tier name: `[a-z0-9][a-z0-9_-]*`.
pub fn check_name(name: &str) -> Result<(), String> {
    if matches(&NAME, name) {
        Ok(())
    } else {
        Err(format!(
            "expected a name of lowercase letters, digits, `_` and `-` \
             ([a-z0-9][a-z0-9_-]*), found {name:?}"
        ))
    }
}

/// A model label: anything but blank.
pub fn check_model(model: &str) -> Result<(), String> {
    if model.trim().is_empty() {
        Err(format!("expected a model name, found {model:?}"))
    } else {
        Ok(())
    }
}

/// An integer within `range`, converted to `u32`.
pub fn int_in(value: i64, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(format!(
            "expected an integer in {}..={}, found {value}",
            range.start(),
            range.end()
        )),
    }
}

/// An integer of at least `min`, converted to `u32`.
pub fn int_at_least(value: i64, min: u32) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(v) if v >= min => Ok(v),
        _ => Err(format!(
            "expected an integer in {min}..={}, found {value}",
            u32::MAX
        )),
    }
}

/// A number within `range`.
pub fn number_in(value: f64, range: std::ops::RangeInclusive<f64>) -> Result<f64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "expected a number in {}..={}, found {value}",
            range.start(),
            range.end()
        ))
    }
}

/// A share of calls: greater than 0, at most 1.
pub fn ratio(value: f64) -> Result<f64, String> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "expected a number greater than 0 and at most 1, found {value}"
        ))
    }
}

/// A price: finite and not negative.
pub fn non_negative(value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "expected a non-negative finite number, found {value}"
        ))
    }
}

/// Any finite number.
pub fn finite(value: f64) -> Result<f64, String> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("expected a finite number, found {value}"))
    }
}

/// A duration like `500ms`, `30s`, `1.5m` or `2h`, greater than zero.
pub fn duration(value: &Scalar) -> Result<Duration, String> {
    match duration_or_zero(value)? {
        Duration::ZERO => Err(format!(
            "expected a duration greater than zero, found {}",
            value.found()
        )),
        d => Ok(d),
    }
}

/// As [`duration`], but `0s` (or `0ms`, …) is allowed: for waits that may be none.
pub fn duration_or_zero(value: &Scalar) -> Result<Duration, String> {
    let expected = "expected a duration like 500ms, 30s or 2m";
    let bad = || format!("{expected}, found {}", value.found());
    let caps = match (&*DURATION, value.is_string) {
        (Some(re), true) => re.captures(value.text.trim()).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    let whole: u128 = caps[1].parse().map_err(|_| bad())?;
    // Up to nine fractional digits, as billionths of the unit.
    let frac_digits = caps.get(2).map_or("", |m| m.as_str());
    let frac_billionths: u128 = format!("{:0<9.9}", frac_digits)
        .parse()
        .map_err(|_| bad())?;
    let unit_nanos: u128 = match &caps[3] {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => 3_600_000_000_000,
    };
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_billionths))
        .and_then(|n| n.checked_mul(unit_nanos))
        .map(|n| n / 1_000_000_000)
        .ok_or_else(bad)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    // The remainder is below 10^9 and so fits.
    let subsec = u32::try_from(nanos % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, subsec))
}

/// A base URL after expansion: http(s), a host, no query or fragment; trailing
/// slashes are removed. `raw` is the text before expansion, for the message.
pub fn base_url(expanded: &str, raw: &str) -> Result<String, String> {
    let url = expanded.trim_end_matches('/');
    if matches(&URL, url) {
        return Ok(url.to_owned());
    }
    let mut message = format!(
        "expected an http:// or https:// url without query or fragment, found {expanded:?}"
    );
    if expanded != raw {
        message.push_str(&format!(" (expanded from {raw:?})"));
    }
    Err(message)
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

    #[test]
    fn names() {
        for ok in ["default", "a", "0", "large-2_b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Default", "-a", "_a", "a b", "a.b", "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("1.5m", Duration::from_secs(90)),
            ("2h", Duration::from_secs(7200)),
            ("0.1s", Duration::from_millis(100)),
            ("1.25ms", Duration::from_micros(1250)),
        ];
        for (s, want) in cases {
            assert_eq!(duration(&text(s)).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "30",
            "30 seconds",
            "s",
            "1.s",
            ".5s",
            "-1s",
            "1d",
            "1e3s",
            "",
        ] {
            let err = duration(&text(bad)).unwrap_err();
            assert!(err.starts_with("expected a duration like"), "{bad}: {err}");
        }
        let err = duration(&text("30 seconds")).unwrap_err();
        assert_eq!(
            err,
            "expected a duration like 500ms, 30s or 2m, found \"30 seconds\""
        );
        let number = Scalar {
            text: "30".into(),
            is_string: false,
        };
        assert!(duration(&number).unwrap_err().ends_with("found 30"));
        let zero = duration(&text("0ms")).unwrap_err();
        assert!(zero.contains("greater than zero"), "{zero}");
        assert!(duration(&text("99999999999999999999999h")).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/", "x").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("https://api.example.com/v1//", "x").unwrap(),
            "https://api.example.com/v1"
        );
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http:///x",
            "http://a b",
            "http://x?q=1",
            "x",
        ] {
            assert!(base_url(bad, bad).is_err(), "{bad}");
        }
        let err = base_url("nope", "${U:-nope}").unwrap_err();
        assert!(
            err.ends_with("found \"nope\" (expanded from \"${U:-nope}\")"),
            "{err}"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(int_in(256, 1..=8192), Ok(256));
        assert_eq!(
            int_in(0, 1..=8192),
            Err("expected an integer in 1..=8192, found 0".into())
        );
        assert!(int_in(-1, 0..=10).is_err());
        assert!(int_in(i64::MAX, 0..=10).is_err());
        assert!(non_negative(0.0).is_ok());
        assert!(non_negative(-0.1).is_err());
        assert!(non_negative(f64::INFINITY).is_err());
        assert!(finite(f64::NAN).is_err());
        assert!(check_model(" ").is_err());
        assert_eq!(int_at_least(1, 1), Ok(1));
        assert_eq!(
            int_at_least(0, 1),
            Err("expected an integer in 1..=4294967295, found 0".into())
        );
        assert!(int_at_least(i64::MAX, 1).is_err());
        assert_eq!(number_in(10.0, 0.0..=10.0), Ok(10.0));
        assert_eq!(
            number_in(10.5, 0.0..=10.0),
            Err("expected a number in 0..=10, found 10.5".into())
        );
        assert!(number_in(f64::NAN, 0.0..=10.0).is_err());
        assert_eq!(ratio(1.0), Ok(1.0));
        for bad in [0.0, -0.5, 1.01, f64::NAN] {
            assert!(ratio(bad).is_err(), "{bad}");
        }
    }
}
