//! Personal data and secrets in request text, for privacy rules (`when: { pii: … }`).
//!
//! [`detect`] lists every finding with its byte span; [`kinds`] is what routing rules
//! need. The detectors favour precision without giving up what matters: a false
//! positive only sends a harmless prompt down the privacy path, but a false negative
//! leaks data, so each rule pairs a pattern with the checks real data passes and
//! look-alikes fail (check digits, the characters around a match, the shape of a
//! token). What each kind matches, and what it deliberately does not:
//!
//! - **email**: `local@domain.tld`; the local part and domain labels use Latin, Greek,
//!   Cyrillic letters and digits (`._%+-` too in the local part), the top-level domain
//!   is two or more letters. Not `a@b`, `user@localhost`, `user@127.0.0.1`, `@handle`
//!   mentions, `pkg@1.2.3`, `icon@2x.png`, the `user@host` of a URL
//!   (`https://user@example.com/`, `ssh://git@host.tld/…`) or of an scp-style remote
//!   (`git@github.com:org/repo.git`). An address in a URL path is still an address
//!   (`https://example.com/u/jane@example.org`); `https://example.com/user@host` has
//!   no dotted domain and is not one.
//! - **phone**: `+` and 8–15 digits in groups split by single spaces, dots, dashes or
//!   parentheses (E.164-like, `+44 (0)20 7946 0958`; a number after it split by a
//!   space is left out); North American `(555) 123-4567`, `555-123-4567`,
//!   `555.123.4567`, `555 123 4567`; national numbers with a trunk `0` and one
//!   separator kind (`020 7946 0958`, `06 12 34 56 78`, `(030) 1234567`), 9–12
//!   digits, or unbroken `0` + 9–10 digits. Not years, plain numbers, decimals
//!   (`3.14159`, `+1.23456789`), dates, times, IP addresses, versions, numbers glued to
//!   letters or continuing a longer number, `#` or currency prefixed numbers,
//!   placeholders (`000-000-0000`, `0123456789`), `078-05-1120` (shaped like a US
//!   SSN), US numbers written as ten bare digits (indistinguishable from ids and
//!   timestamps), digits inside an IBAN, a card number or a key.
//! - **card**: 13–19 digits starting with 2–6 (the major industry identifiers of
//!   payment cards), unbroken or in groups (`4-4-4-4`, `4-6-5`, …; one separator, a
//!   space or a dash) that pass the Luhn check. Not Luhn failures, numbers starting
//!   with 0, 1 or 7–9 (ids, timestamps in ms or ns, snowflake ids), decimals
//!   (`0.4111111111111111`), a run of 4-digit groups that goes on (a table of numbers),
//!   digits glued to letters or after `#`, digits inside an IBAN.
//! - **iban**: country code, check digits and BBAN, compact or in groups of four split
//!   by single spaces, any letter case; the country must be in the IBAN registry with
//!   exactly its length, and the ISO 13616 mod-97 check must give 1. Not wrong check
//!   digits, unknown countries, wrong lengths, strings glued to letters or digits
//!   (hex digests, longer ids).
//! - **api_key**: well-known prefixes (`sk-`, `sk-proj-`, `sk-ant-`, `sk_live_`,
//!   `rk_live_`, `sk_test_`, `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`, `github_pat_`,
//!   `xoxa-`/`xoxb-`/`xoxp-`/`xoxr-`/`xoxs-`, `AKIA`/`ASIA` access key ids, `AIza`,
//!   `glpat-`, `hf_`, `npm_`) with a random-looking body, JWTs, the token after
//!   `Bearer`, `Basic` credentials, `aws_secret_access_key = …` values, and long
//!   random-looking tokens (the generic rule, see `MIN_ENTROPY` and `WORDY_SEGMENT`).
//!   Not words or identifiers after a prefix (`sk-learn-…`, `task-…`), hexadecimal
//!   strings of any length (git commit hashes, digests, UUIDs: too common in prompts
//!   about code to treat as secrets; hex keys are still found after `Bearer` or with a
//!   known prefix), long identifiers, base64 of text without a key in it, integrity
//!   hashes (`sha512-…`, go.sum `h1:…`), SSH public keys, data URIs, and anything
//!   inside a PEM block (certificates and public keys are not secrets; private keys
//!   are reported as private keys). Opaque random ids (document or playlist ids) look
//!   like keys and are reported.
//! - **private_key**: a PEM `BEGIN … PRIVATE KEY` line (RSA, EC, DSA, OPENSSH,
//!   ENCRYPTED, PKCS#8, PGP `… PRIVATE KEY BLOCK`, SSH2 `---- BEGIN …`), spanning to its
//!   END line, or when that is missing (a truncated paste still leaks) over the key
//!   lines that follow; also the tail of a key pasted without its BEGIN line (base64
//!   lines, then `END … PRIVATE KEY`). JSON-escaped newlines (`\n`) count as line
//!   breaks. The BEGIN line alone is reported: a prompt about PEM syntax is rare, and
//!   routing it privately is cheap. Not public keys or certificates.
//!
//! All patterns are `regex` patterns (linear time, no backtracking) compiled once;
//! every other step is linear in the match it looks at, so a prompt of hundreds of KB
//! costs a few passes over its text.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::{Captures, Match, Regex};

/// A kind of personal data or secret a rule can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number that passes the Luhn check.
    Card,
    /// An IBAN whose check digits are right.
    Iban,
    /// A token that looks like an API key or access token.
    ApiKey,
    /// A PEM private key block.
    PrivateKey,
}

impl PiiKind {
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Card,
        PiiKind::Iban,
        PiiKind::ApiKey,
        PiiKind::PrivateKey,
    ];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Card => "card",
            PiiKind::Iban => "iban",
            PiiKind::ApiKey => "api_key",
            PiiKind::PrivateKey => "private_key",
        }
    }

    pub fn parse(s: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One detected span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiFinding {
    pub kind: PiiKind,
    /// byte offsets into the text
    pub start: usize,
    pub end: usize,
}

/// Every finding in `text`, sorted by start (then kind); overlapping findings of different
/// kinds may both be reported except where documented (e.g. digits inside an IBAN are not
/// also a phone number or a card).
///
/// Findings of one kind never overlap: overlapping matches of a kind are merged into one
/// span. Between kinds: digits inside an IBAN are neither a phone number nor a card, a
/// card number is not also a phone number, digits inside an API key or a private key are
/// neither, and nothing inside a PEM block (private key, certificate, public key) is an
/// API key.
pub fn detect(text: &str) -> Vec<PiiFinding> {
    let pem = pem_blocks(text);
    let pem_spans: Vec<Span> = pem.iter().map(|b| b.span).collect();
    let private: Vec<Span> = pem.iter().filter(|b| b.private).map(|b| b.span).collect();
    let keys = without(merge(api_key_spans(text, 0)), &[&pem_spans]);
    let ibans = merge(iban_spans(text));
    let cards = without(merge(card_spans(text)), &[&ibans, &keys, &private]);
    let phones = without(merge(phone_spans(text)), &[&ibans, &cards, &keys, &private]);
    let emails = merge(email_spans(text));

    let mut findings = Vec::new();
    for (kind, spans) in [
        (PiiKind::Email, emails),
        (PiiKind::Phone, phones),
        (PiiKind::Card, cards),
        (PiiKind::Iban, ibans),
        (PiiKind::ApiKey, keys),
        (PiiKind::PrivateKey, private),
    ] {
        findings.extend(
            spans
                .into_iter()
                .map(|(start, end)| PiiFinding { kind, start, end }),
        );
    }
    findings.sort_by_key(|f| (f.start, f.kind, f.end));
    findings
}

/// The kinds present in `text` (what routing rules need).
pub fn kinds(text: &str) -> BTreeSet<PiiKind> {
    detect(text).into_iter().map(|f| f.kind).collect()
}

/// Whether any of `texts` holds personal data or a secret: what keeps a request out of
/// everything the gateway sends elsewhere or keeps on disk for later (shadow samples,
/// distillation examples).
pub fn found_in<'a>(texts: impl IntoIterator<Item = &'a str>) -> bool {
    texts.into_iter().any(|t| !detect(t).is_empty())
}

/// A byte range `(start, end)` of the text.
type Span = (usize, usize);

/// A constant pattern, compiled on first use; `None` only if the pattern were invalid,
/// which a test rules out (the crate denies `expect`).
type Pattern = LazyLock<Option<Regex>>;

fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// Every match of `pattern`, leftmost first, not overlapping.
fn matches<'t>(pattern: &'static Pattern, text: &'t str) -> impl Iterator<Item = Match<'t>> + 't {
    LazyLock::force(pattern)
        .iter()
        .flat_map(move |re| re.find_iter(text))
}

fn captures<'t>(
    pattern: &'static Pattern,
    text: &'t str,
) -> impl Iterator<Item = Captures<'t>> + 't {
    LazyLock::force(pattern)
        .iter()
        .flat_map(move |re| re.captures_iter(text))
}

/// Like [`matches`], but when `accept` turns a candidate down, searches again one
/// character after its start, so a rejected candidate cannot hide an acceptable one that
/// starts inside it. Only for patterns whose matches are short or stop at a character
/// they cannot start with, which keeps the retries linear.
fn scan(
    pattern: &'static Pattern,
    text: &str,
    mut accept: impl FnMut(usize, usize) -> Option<Span>,
    out: &mut Vec<Span>,
) {
    let Some(re) = LazyLock::force(pattern) else {
        return;
    };
    let mut at = 0;
    while let Some(m) = re.find_at(text, at) {
        let next = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
        match accept(m.start(), m.end()) {
            Some(span) => {
                out.push(span);
                at = m.end().max(next);
            }
            None => at = next,
        }
        if at > text.len() {
            break;
        }
    }
}

/// Sorted, with overlapping spans merged into one.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Whether `span` overlaps one of `sorted` (sorted, not overlapping each other).
fn overlaps(sorted: &[Span], (start, end): Span) -> bool {
    let i = sorted.partition_point(|&(_, e)| e <= start);
    sorted.get(i).is_some_and(|&(s, _)| s < end)
}

/// `spans` without those overlapping any span of `others`.
fn without(spans: Vec<Span>, others: &[&[Span]]) -> Vec<Span> {
    spans
        .into_iter()
        .filter(|&span| others.iter().all(|o| !overlaps(o, span)))
        .collect()
}

/// Whether the number starting at `start` continues something to its left: a word, an
/// address, a larger number (`1.`, `12,`, `3/`, `7-`, with `space_joins` also `12 `), a
/// sign, or an id or amount (`#`, currency).
fn glued_before(text: &str, start: usize, space_joins: bool) -> bool {
    let mut before = text[..start].chars().rev();
    let Some(c) = before.next() else {
        return false;
    };
    if c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '+' | '#' | '$' | '€' | '£' | '¥') {
        return true;
    }
    let joins = matches!(c, '.' | ',' | ':' | '/' | '-') || (space_joins && c == ' ');
    joins && before.next().is_some_and(|d| d.is_ascii_digit())
}

/// Whether the number ending at `end` goes on to its right (see [`glued_before`]).
fn glued_after(text: &str, end: usize, space_joins: bool) -> bool {
    let mut after = text[end..].chars();
    let Some(c) = after.next() else {
        return false;
    };
    if c.is_ascii_alphanumeric() || matches!(c, '_' | '@') {
        return true;
    }
    let joins = matches!(c, '.' | ',' | ':' | '/' | '-') || (space_joins && c == ' ');
    joins && after.next().is_some_and(|d| d.is_ascii_digit())
}

/// Whether the ASCII digits of `s` are a placeholder: one digit repeated
/// (`000-000-0000`) or counting up (`0123456789`, `123-456-7890`).
fn placeholder_digits(s: &str) -> bool {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
    let next = |d: u8| if d == b'9' { b'0' } else { d + 1 };
    digits.windows(2).all(|w| w[0] == w[1]) || digits.windows(2).all(|w| w[1] == next(w[0]))
}

mod api_key;
mod card;
mod email;
mod iban;
mod pem;
mod phone;

use api_key::*;
use card::*;
use email::*;
use iban::*;
use pem::*;
use phone::*;

#[cfg(test)]
pub(crate) fn patterns() -> Vec<(&'static str, &'static Pattern)> {
    vec![
        ("EMAIL", &EMAIL),
        ("PHONE_INTERNATIONAL", &PHONE_INTERNATIONAL),
        ("PHONE_NANP", &PHONE_NANP),
        ("PHONE_TRUNK", &PHONE_TRUNK),
        ("DIGIT_CHAIN", &DIGIT_CHAIN),
        ("IBAN", &IBAN),
        ("KEY_PREFIXED", &KEY_PREFIXED),
        ("BEARER", &BEARER),
        ("BASIC", &BASIC),
        ("AWS_SECRET", &AWS_SECRET),
        ("TOKEN", &TOKEN),
        ("PEM_BEGIN", &PEM_BEGIN),
        ("PEM_END", &PEM_END),
    ]
}

#[cfg(test)]
mod tests;
