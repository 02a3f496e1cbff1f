//! API keys, tokens and credentials.

use super::*;

/// Tokens with a well-known prefix, and JWTs.
pub(super) static KEY_PREFIXED: Pattern = LazyLock::new(|| {
    compile(concat!(
        r"sk-[A-Za-z0-9_\-]{20,}",
        r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"|gh[pousr]_[A-Za-z0-9]{30,}",
        r"|github_pat_[A-Za-z0-9_]{30,}",
        r"|xox[abprs]-[A-Za-z0-9\-]{10,}",
        r"|(?:AKIA|ASIA)[A-Z0-9]{16}",
        r"|AIza[A-Za-z0-9_\-]{35}",
        r"|glpat-[A-Za-z0-9_\-]{20,}",
        r"|hf_[A-Za-z0-9]{30,}",
        r"|npm_[A-Za-z0-9]{36}",
        r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
    ))
});

/// The token of an `Authorization: Bearer` header (RFC 6750 `b64token`).
pub(super) static BEARER: Pattern =
    LazyLock::new(|| compile(r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{20,}=*)"));

/// The credentials of an `Authorization: Basic` header.
pub(super) static BASIC: Pattern =
    LazyLock::new(|| compile(r"Basic[ \t]+([A-Za-z0-9+/]{8,}={0,2})"));

/// An AWS secret access key where it is assigned (`aws_secret_access_key = …`).
pub(super) static AWS_SECRET: Pattern = LazyLock::new(|| {
    compile(r#"(?i:aws_?secret_?access_?key)["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9/+]{40})"#)
});

/// Candidates for the generic rule: long runs of base64 and base64url characters.
pub(super) static TOKEN: Pattern = LazyLock::new(|| compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}"));

/// The generic rule's shortest token.
pub(super) const MIN_GENERIC_LEN: usize = 32;

/// The generic rule's least Shannon entropy, in bits per character, of the token's own
/// character frequencies. A uniformly random 32-character base62 token averages about
/// 4.5 bits and, in simulation, 99.99 % of them are above 3.9 (longer tokens score
/// higher); base64url ones likewise. Repetitive strings score well below
/// (`Test1Test2Test3…` ≈ 2.9, long words ≈ 3.5), while identifiers can score as high as
/// keys (`AbstractSingletonProxyFactoryBean2` ≈ 4.1), which is why the rule also needs
/// short segments ([`WORDY_SEGMENT`]). 3.75 leaves a margin below random tokens.
pub(super) const MIN_ENTROPY: f64 = 3.75;

/// The mean segment length (a segment: a lowercase word with its capital, an uppercase
/// or a digit run) from which a token reads as words. Random base62 tokens of 32
/// characters average 1.9, and 99.9 % stay below 3.2; identifiers split into words
/// (`XMLHttpRequestEventTarget2DOMContentLoaded` 4.7, `k8sClusterNodePoolAutoscaler…`
/// 3.4).
pub(super) const WORDY_SEGMENT: f64 = 3.3;

/// API key and token spans; `depth` 0 for the text itself, 1 for text decoded from a
/// base64 token (which is not decoded further).
pub(super) fn api_key_spans(text: &str, depth: u8) -> Vec<Span> {
    let mut out = Vec::new();
    for m in matches(&KEY_PREFIXED, text) {
        let bounded = !token_byte_before(text, m.start()) && !token_byte_at(text, m.end());
        if bounded && prefixed_key(m.as_str()) {
            out.push((m.start(), m.end()));
        }
    }
    for c in captures(&BEARER, text) {
        let (Some(all), Some(token)) = (c.get(0), c.get(1)) else {
            continue;
        };
        // A full stop ending the sentence is not part of the token.
        let t = token.as_str().trim_end_matches('.');
        if !word_byte_before(text, all.start()) && random_looking(t.trim_end_matches('=')) {
            out.push((token.start(), token.start() + t.len()));
        }
    }
    for c in captures(&BASIC, text) {
        let (Some(all), Some(token)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let credentials = decode_base64_text(token.as_str().trim_end_matches('='));
        let user_password = credentials.as_deref().and_then(|c| c.split_once(':'));
        if !word_byte_before(text, all.start())
            && !token_byte_at(text, token.end())
            && user_password.is_some_and(|(u, p)| !u.is_empty() && !p.is_empty())
        {
            out.push((token.start(), token.end()));
        }
    }
    for c in captures(&AWS_SECRET, text) {
        let Some(secret) = c.get(1) else {
            continue;
        };
        let next = text.as_bytes().get(secret.end());
        if !next.is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
            out.push((secret.start(), secret.end()));
        }
    }
    for m in matches(&TOKEN, text) {
        if generic_key(text, m.start(), m.end(), depth) {
            out.push((m.start(), m.end()));
        }
    }
    out
}

pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

pub(super) fn token_byte_before(text: &str, i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|i| text.as_bytes().get(i))
        .is_some_and(|&b| is_token_byte(b))
}

pub(super) fn token_byte_at(text: &str, i: usize) -> bool {
    text.as_bytes().get(i).is_some_and(|&b| is_token_byte(b))
}

pub(super) fn word_byte_before(text: &str, i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|i| text.as_bytes().get(i))
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a token matched by [`KEY_PREFIXED`] has a key's body: JWTs and AWS key ids
/// have a fixed shape, Slack tokens carry numeric ids, and the rest are random (so
/// `sk-learn-compatible-estimators` or `sk-Learn-More-About-Pipelines-2024` are not keys).
pub(super) fn prefixed_key(key: &str) -> bool {
    if key.starts_with("eyJ") || key.starts_with("AKIA") || key.starts_with("ASIA") {
        return true;
    }
    if key.starts_with("xox") {
        return key.bytes().skip(5).any(|b| b.is_ascii_digit());
    }
    let body = match key.strip_prefix("AIza") {
        Some(body) => body,
        None => key.split_once(['-', '_']).map_or(key, |(_, body)| body),
    };
    random_looking(body)
}

/// At least two of lowercase, uppercase and digits, and segments too short for words.
pub(super) fn random_looking(s: &str) -> bool {
    let classes = [
        u8::is_ascii_lowercase,
        u8::is_ascii_uppercase,
        u8::is_ascii_digit,
    ]
    .iter()
    .filter(|class| s.bytes().any(|b| class(&b)))
    .count();
    classes >= 2 && mean_segment_len(s) < WORDY_SEGMENT
}

/// The generic rule: a long token mixing upper, lower and digits, random-looking by its
/// entropy and its segment lengths, and none of the random-looking things that are not
/// secrets.
pub(super) fn generic_key(text: &str, start: usize, end: usize, depth: u8) -> bool {
    let token = text[start..end].trim_end_matches('=');
    let b = token.as_bytes();
    let has = |class: fn(&u8) -> bool| b.iter().any(class);
    if b.len() < MIN_GENERIC_LEN
        || !(has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit))
    {
        return false;
    }
    // Hexadecimal, whatever the case: commit hashes, digests, UUIDs.
    if b.iter()
        .all(|&c| c.is_ascii_hexdigit() || c == b'-' || c == b'_')
    {
        return false;
    }
    // A path, not base64 (where `/` is one character in 64).
    let slashes = b.iter().filter(|&&c| c == b'/').count();
    if token.starts_with('/') || slashes * 16 > b.len() {
        return false;
    }
    // SSH public keys (`AAAAB3NzaC1yc2E…`: the wire format starts with a length),
    // subresource integrity and go.sum hashes, data URIs.
    let before = &text[..start];
    if token.starts_with("AAAA")
        || ["sha1-", "sha256-", "sha384-", "sha512-"]
            .iter()
            .any(|p| token.starts_with(p))
        || before.ends_with("h1:")
        || before.ends_with("base64,")
    {
        return false;
    }
    if mean_segment_len(token) >= WORDY_SEGMENT || entropy(token) < MIN_ENTROPY {
        return false;
    }
    // Base64 of text is a secret only if the text holds one (`T1BFTkFJX0FQSV9LRVk9…`
    // is `OPENAI_API_KEY=sk-…`; base64 of a sentence or a URL is not).
    if depth == 0 {
        if let Some(decoded) = decode_base64_text(token) {
            return !api_key_spans(&decoded, depth + 1).is_empty();
        }
    }
    true
}

/// The mean length of the segments of `token`: lowercase runs with the capital before
/// them, uppercase runs, digit runs; other characters only separate.
pub(super) fn mean_segment_len(token: &str) -> f64 {
    #[derive(Clone, Copy, PartialEq)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Other,
    }
    let mut segments = 0u32;
    let mut chars = 0u32;
    let mut prev = Class::Other;
    let mut upper_run = 0u32;
    for b in token.bytes() {
        let class = match b {
            b'a'..=b'z' => Class::Lower,
            b'A'..=b'Z' => Class::Upper,
            b'0'..=b'9' => Class::Digit,
            _ => Class::Other,
        };
        if class == Class::Other {
            prev = class;
            upper_run = 0;
            continue;
        }
        chars += 1;
        match (prev, class) {
            (p, c) if p == c => {}
            // `Http`: one segment; `XMLHttp`: the last capital starts the second.
            (Class::Upper, Class::Lower) => {
                if upper_run > 1 {
                    segments += 1;
                }
            }
            _ => segments += 1,
        }
        upper_run = match (prev, class) {
            (Class::Upper, Class::Upper) => upper_run + 1,
            (_, Class::Upper) => 1,
            _ => 0,
        };
        prev = class;
    }
    f64::from(chars) / f64::from(segments.max(1))
}

/// Shannon entropy of `s`'s byte frequencies, in bits per byte.
pub(super) fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// `s` (padding removed) decoded as base64 or base64url, if that gives text: UTF-8
/// without control characters other than tabs and line breaks.
pub(super) fn decode_base64_text(s: &str) -> Option<String> {
    if (s.contains(['-', '_']) && s.contains(['+', '/'])) || s.len() % 4 == 1 {
        return None;
    }
    let mut bytes = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    let decoded = String::from_utf8(bytes).ok()?;
    decoded
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .then_some(decoded)
}
