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

// ---------------------------------------------------------------------------------------
// E-mail

/// The letters and digits of addresses: Latin (ASCII included), Greek and Cyrillic, so an
/// address written right next to CJK text (`連絡先はjane@example.comです`) is cut at it.
macro_rules! email_char {
    () => {
        r"\p{Latin}\p{Greek}\p{Cyrillic}0-9"
    };
}

static EMAIL: Pattern = LazyLock::new(|| {
    compile(concat!(
        "[",
        email_char!(),
        r"._%+\-]+@(?:[",
        email_char!(),
        "](?:[",
        email_char!(),
        r"\-]*[",
        email_char!(),
        r"])?\.)+[\p{Latin}\p{Greek}\p{Cyrillic}]{2,}",
    ))
});

fn email_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for m in matches(&EMAIL, text) {
        let s = m.as_str();
        let Some(at) = s.find('@') else {
            continue;
        };
        // `--jane@…`, `.jane@…`: punctuation before the address is not part of it.
        let local = s[..at].trim_start_matches(['.', '%', '+', '-']);
        if local.is_empty() {
            continue;
        }
        let start = m.start() + (at - local.len());
        let end = m.end();
        if text[..start].ends_with('@') {
            continue;
        }
        let mut after = text[end..].chars();
        let (c1, c2) = (after.next(), after.next());
        match c1 {
            // `jane@example.com2`, `a@b.c_d`, `a@b.cd@e`: part of something longer.
            Some(c) if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@') => continue,
            // `git@github.com:org/repo.git`, `user@host.tld:22`: a login at a host.
            Some(':')
                if c2.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '~')) =>
            {
                continue
            }
            _ => {}
        }
        if in_url_authority(text, start) || is_retina_asset(&s[at + 1..]) {
            continue;
        }
        out.push((start, end));
    }
    out
}

/// Whether `start` is in the user part of a URL's authority (`https://user@host.tld/`,
/// `https://user:secret@host.tld`): a login at a host, not an e-mail address. Looks back
/// at most 256 bytes, to the start of the whitespace-delimited word.
fn in_url_authority(text: &str, start: usize) -> bool {
    let mut from = start.saturating_sub(256);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = &text[from..start];
    let word = before
        .rsplit(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '[' | ']' | '`')
        })
        .next()
        .unwrap_or(before);
    word.rfind("://")
        .is_some_and(|i| !word[i + 3..].contains('/'))
}

/// Whether `domain` is the `2x.png` of a high-density image name (`icon@2x.png`,
/// `logo@1.5x.webp`).
fn is_retina_asset(domain: &str) -> bool {
    let Some(host) = domain.rfind('.').map(|i| &domain[..i]) else {
        return false;
    };
    host.strip_suffix('x').is_some_and(|scale| {
        scale.starts_with(|c: char| c.is_ascii_digit())
            && scale.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    })
}

// ---------------------------------------------------------------------------------------
// Phone

/// `+`, a country code and groups split by at most one space, dot or dash, possibly in
/// parentheses: `+44 20 7946 0958`, `+1 (555) 123-4567`, `(+44) 20…`, `+44 (0)20…`.
static PHONE_INTERNATIONAL: Pattern =
    LazyLock::new(|| compile(r"\(?\+[1-9][0-9]{0,3}\)?(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9]+))*"));

/// North American numbers, one separator kind per number: `(555) 123-4567`,
/// `555-123-4567`, `1-800-555-0199`, `555.123.4567`, `555 123 4567`.
static PHONE_NANP: Pattern = LazyLock::new(|| {
    compile(concat!(
        r"\([0-9]{3}\) ?[0-9]{3}[\-. ][0-9]{4}",
        r"|(?:1-)?[0-9]{3}-[0-9]{3}-[0-9]{4}",
        r"|(?:1\.)?[0-9]{3}\.[0-9]{3}\.[0-9]{4}",
        r"|(?:1 )?[0-9]{3} [0-9]{3} [0-9]{4}",
    ))
});

/// National numbers with a trunk `0`: `020 7946 0958`, `06 12 34 56 78`,
/// `030/12345678`, `(020) 7946 0958`, unbroken `0612345678`.
static PHONE_TRUNK: Pattern = LazyLock::new(|| {
    compile(concat!(
        r"\(0[0-9]{1,4}\) ?[0-9]{2,8}(?:[ .\-/][0-9]{2,8}){0,3}",
        r"|0[0-9]{1,4}(?:[ .\-/][0-9]{2,8}){1,4}",
        r"|0[1-9][0-9]{8,9}",
    ))
});

fn phone_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    scan(
        &PHONE_INTERNATIONAL,
        text,
        |s, e| international_phone(text, s, e),
        &mut out,
    );
    scan(
        &PHONE_NANP,
        text,
        |s, e| national_phone(text, s, e, &text[s..e]),
        &mut out,
    );
    scan(&PHONE_TRUNK, text, |s, e| trunk_phone(text, s, e), &mut out);
    out
}

/// The digit runs of `s`, as byte ranges of `s`.
fn digit_runs(s: &str) -> Vec<Span> {
    let b = s.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

fn international_phone(text: &str, start: usize, end: usize) -> Option<Span> {
    let m = &text[start..end];
    let mut runs = digit_runs(m);
    let &(_, code_end) = runs.first()?;
    let mut digits: usize = runs.iter().map(|(s, e)| e - s).sum();
    // `+44 20 7946 0958 2024`: another number after the phone number, split by a space.
    let mut end = end;
    while digits > 15 && runs.len() > 2 {
        let (s, e) = runs[runs.len() - 1];
        if m.as_bytes().get(s.wrapping_sub(1)) != Some(&b' ') {
            break;
        }
        digits -= e - s;
        runs.pop();
        end = start + runs[runs.len() - 1].1;
    }
    let m = &text[start..end];
    if !(8..=15).contains(&digits) || placeholder_digits(m) {
        return None;
    }
    // `+1.23456789`: a signed decimal.
    if runs.len() == 2 && m.as_bytes().get(code_end) == Some(&b'.') {
        return None;
    }
    // `+1 2 3 4 5 6 7 8`: a list of digits. One single-digit group is normal (`+33 6 …`,
    // `+81-3-…`), and so is the `(0)` of `+44 (0)20 …`.
    let trunk = |(s, e): Span| &m[s..e] == "0" && m[..s].ends_with('(') && m[e..].starts_with(')');
    let singles = runs[1..]
        .iter()
        .filter(|&&(s, e)| e - s == 1 && !trunk((s, e)))
        .count();
    if singles > 1 {
        return None;
    }
    // `(+44 20 …` without its `)`: the parenthesis is not part of the number.
    let start = if m.starts_with('(') && !m[code_end..].starts_with(')') {
        start + 1
    } else {
        start
    };
    (!glued_before(text, start, false) && !glued_after(text, end, false)).then_some((start, end))
}

/// A national number `text[start..end]` is a phone number unless it is a placeholder or
/// continues a number, word or address on either side.
fn national_phone(text: &str, start: usize, end: usize, number: &str) -> Option<Span> {
    let glued = glued_before(text, start, true) || glued_after(text, end, true);
    (!glued && !placeholder_digits(number)).then_some((start, end))
}

fn trunk_phone(text: &str, start: usize, end: usize) -> Option<Span> {
    let m = &text[start..end];
    let groups = match m.strip_prefix('(') {
        Some(rest) => {
            let close = rest.find(')')?;
            rest[close + 1..].trim_start_matches(' ')
        }
        None => m,
    };
    // One separator kind: `06 12 34 56 78`, not `08.11.2024 12` (a date and a time).
    let mut separators = groups.bytes().filter(|b| !b.is_ascii_digit());
    let separated = match separators.next() {
        Some(first) if separators.any(|b| b != first) => return None,
        Some(_) => true,
        None => groups.len() != m.len(),
    };
    let digits = m.bytes().filter(u8::is_ascii_digit).count();
    if separated && !(9..=12).contains(&digits) {
        return None;
    }
    // `078-05-1120` has the shape of a US social security number, not of a phone number.
    let lens: Vec<usize> = digit_runs(m).iter().map(|(s, e)| e - s).collect();
    if lens == [3, 2, 4] && m.contains('-') {
        return None;
    }
    national_phone(text, start, end, m)
}

// ---------------------------------------------------------------------------------------
// Card

/// Digit runs joined by single spaces or dashes; cards are looked for inside.
static DIGIT_CHAIN: Pattern = LazyLock::new(|| compile(r"[0-9]+(?:[ \-][0-9]+)*"));

fn card_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    for m in matches(&DIGIT_CHAIN, text) {
        if m.len() < 13 {
            continue;
        }
        let (start, end) = (m.start(), m.end());
        let mut groups: Vec<Span> = Vec::new();
        let mut seps: Vec<u8> = Vec::new();
        let mut i = start;
        while i < end {
            let g = i;
            while i < end && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((g, i));
            if i < end {
                seps.push(b[i]);
                i += 1;
            }
        }
        let last = groups.len() - 1;
        let open = !glued_before(text, start, false);
        let close = !glued_after(text, end, false);
        // A candidate from group `first` to group `to` is bounded where the chain is.
        let bounded = |first: usize, to: usize| (first > 0 || open) && (to < last || close);
        let len = |k: usize| groups[k].1 - groups[k].0;

        // Unbroken: `4111111111111111`, also next to other numbers (`… 12/26 123`).
        for (k, &(s, e)) in groups.iter().enumerate() {
            if (13..=19).contains(&(e - s)) && bounded(k, k) && card_number(&text[s..e]) {
                out.push((s, e));
            }
        }

        // Grouped: a first group of four, middle groups of four or six (`4-4-4-4`,
        // `4-6-5`), one separator, ending where the grouping ends: in `2019 2020 2021
        // 2022 2023` the four-digit groups go on, so it is a list, not a card.
        let mut k = 0;
        while k + 2 <= last {
            let starts = len(k) == 4 && (k == 0 || len(k - 1) != 4 || seps[k - 1] != seps[k]);
            let mut best = None;
            if starts {
                let sep = seps[k];
                let mut digits = 4;
                for j in k + 1..=last {
                    if seps[j - 1] != sep {
                        break;
                    }
                    digits += len(j);
                    if digits > 19 {
                        break;
                    }
                    let goes_on = j < last && seps[j] == sep && len(j + 1) >= 4;
                    if j >= k + 2
                        && digits >= 13
                        && !goes_on
                        && bounded(k, j)
                        && card_number(&text[groups[k].0..groups[j].1])
                    {
                        best = Some(j);
                    }
                    if len(j) != 4 && len(j) != 6 {
                        break;
                    }
                }
            }
            match best {
                Some(j) => {
                    out.push((groups[k].0, groups[j].1));
                    k = j + 1;
                }
                None => k += 1,
            }
        }
    }
    out
}

/// Whether the digits of `s` (separators skipped) are a plausible card number: 13–19
/// digits, a payment major industry identifier (2–6), not one repeated digit, Luhn-valid.
fn card_number(s: &str) -> bool {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    (13..=19).contains(&digits.len())
        && digits.first().is_some_and(|d| (2..=6).contains(d))
        && !placeholder_digits(s)
        && luhn(&digits)
}

/// The Luhn check over digit values.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 1, d * 2) {
                (false, _) => d,
                (true, twice) if twice > 9 => twice - 9,
                (true, twice) => twice,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------------------
// IBAN

/// A country code, check digits and a BBAN, compact or in groups of four.
static IBAN: Pattern = LazyLock::new(|| {
    compile(
        r"[A-Za-z]{2}[0-9]{2}(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,4})?)",
    )
});

/// IBAN lengths by country, from the SWIFT IBAN registry.
#[rustfmt::skip]
const IBAN_LENGTHS: [(&str, usize); 89] = [
    ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16),
    ("BG", 22), ("BH", 22), ("BI", 27), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22),
    ("CY", 28), ("CZ", 24), ("DE", 22), ("DJ", 27), ("DK", 18), ("DO", 28), ("EE", 20),
    ("EG", 29), ("ES", 24), ("FI", 18), ("FK", 18), ("FO", 18), ("FR", 27), ("GB", 22),
    ("GE", 22), ("GI", 23), ("GL", 18), ("GR", 27), ("GT", 28), ("HN", 28), ("HR", 21),
    ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23), ("IS", 26), ("IT", 27), ("JO", 30),
    ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32), ("LI", 21), ("LT", 20), ("LU", 20),
    ("LV", 21), ("LY", 25), ("MC", 27), ("MD", 24), ("ME", 22), ("MK", 19), ("MN", 20),
    ("MR", 27), ("MT", 31), ("MU", 30), ("NI", 28), ("NL", 18), ("NO", 15), ("OM", 23),
    ("PK", 24), ("PL", 28), ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22),
    ("RU", 33), ("SA", 24), ("SC", 31), ("SD", 18), ("SE", 24), ("SI", 19), ("SK", 24),
    ("SM", 27), ("SO", 23), ("ST", 25), ("SV", 28), ("TL", 23), ("TN", 24), ("TR", 26),
    ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20), ("YE", 30),
];

fn iban_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    scan(&IBAN, text, |s, e| iban(text, s, e), &mut out);
    out
}

fn iban(text: &str, start: usize, end: usize) -> Option<Span> {
    if glued_before(text, start, false) {
        return None;
    }
    let m = &text[start..end];
    let country = m.get(..2)?.to_ascii_uppercase();
    let &(_, length) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country)?;
    // The first `length` characters, spaces skipped; they must end where the IBAN does.
    let mut chars = Vec::with_capacity(length);
    let mut iban_end = None;
    for (i, c) in m.char_indices().filter(|&(_, c)| c != ' ') {
        chars.push(c.to_ascii_uppercase());
        if chars.len() == length {
            iban_end = Some(start + i + c.len_utf8());
            break;
        }
    }
    let iban_end = iban_end?;
    if glued_after(text, iban_end, false) {
        return None;
    }
    // Check digits 00, 01 and 99 are never issued; mod 97 of the BBAN, then the country
    // code and check digits, with letters as 10–35, must be 1 (ISO 13616).
    let check = chars[2].to_digit(10)? * 10 + chars[3].to_digit(10)?;
    let mut rest = chars[4..].iter().chain(&chars[..4]);
    let remainder = rest.try_fold(0u32, |r, c| {
        let v = c.to_digit(36)?;
        Some(if v < 10 {
            (r * 10 + v) % 97
        } else {
            (r * 100 + v) % 97
        })
    })?;
    ((2..=98).contains(&check) && remainder == 1).then_some((start, iban_end))
}

// ---------------------------------------------------------------------------------------
// API keys and tokens

/// Tokens with a well-known prefix, and JWTs.
static KEY_PREFIXED: Pattern = LazyLock::new(|| {
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
static BEARER: Pattern = LazyLock::new(|| compile(r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{20,}=*)"));

/// The credentials of an `Authorization: Basic` header.
static BASIC: Pattern = LazyLock::new(|| compile(r"Basic[ \t]+([A-Za-z0-9+/]{8,}={0,2})"));

/// An AWS secret access key where it is assigned (`aws_secret_access_key = …`).
static AWS_SECRET: Pattern = LazyLock::new(|| {
    compile(r#"(?i:aws_?secret_?access_?key)["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9/+]{40})"#)
});

/// Candidates for the generic rule: long runs of base64 and base64url characters.
static TOKEN: Pattern = LazyLock::new(|| compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}"));

/// The generic rule's shortest token.
const MIN_GENERIC_LEN: usize = 32;

/// The generic rule's least Shannon entropy, in bits per character, of the token's own
/// character frequencies. A uniformly random 32-character base62 token averages about
/// 4.5 bits and, in simulation, 99.99 % of them are above 3.9 (longer tokens score
/// higher); base64url ones likewise. Repetitive strings score well below
/// (`Test1Test2Test3…` ≈ 2.9, long words ≈ 3.5), while identifiers can score as high as
/// keys (`AbstractSingletonProxyFactoryBean2` ≈ 4.1), which is why the rule also needs
/// short segments ([`WORDY_SEGMENT`]). 3.75 leaves a margin below random tokens.
const MIN_ENTROPY: f64 = 3.75;

/// The mean segment length (a segment: a lowercase word with its capital, an uppercase
/// or a digit run) from which a token reads as words. Random base62 tokens of 32
/// characters average 1.9, and 99.9 % stay below 3.2; identifiers split into words
/// (`XMLHttpRequestEventTarget2DOMContentLoaded` 4.7, `k8sClusterNodePoolAutoscaler…`
/// 3.4).
const WORDY_SEGMENT: f64 = 3.3;

/// API key and token spans; `depth` 0 for the text itself, 1 for text decoded from a
/// base64 token (which is not decoded further).
fn api_key_spans(text: &str, depth: u8) -> Vec<Span> {
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

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn token_byte_before(text: &str, i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|i| text.as_bytes().get(i))
        .is_some_and(|&b| is_token_byte(b))
}

fn token_byte_at(text: &str, i: usize) -> bool {
    text.as_bytes().get(i).is_some_and(|&b| is_token_byte(b))
}

fn word_byte_before(text: &str, i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|i| text.as_bytes().get(i))
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a token matched by [`KEY_PREFIXED`] has a key's body: JWTs and AWS key ids
/// have a fixed shape, Slack tokens carry numeric ids, and the rest are random (so
/// `sk-learn-compatible-estimators` or `sk-Learn-More-About-Pipelines-2024` are not keys).
fn prefixed_key(key: &str) -> bool {
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
fn random_looking(s: &str) -> bool {
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
fn generic_key(text: &str, start: usize, end: usize, depth: u8) -> bool {
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
fn mean_segment_len(token: &str) -> f64 {
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
fn entropy(s: &str) -> f64 {
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
fn decode_base64_text(s: &str) -> Option<String> {
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

// ---------------------------------------------------------------------------------------
// PEM blocks

/// `-----BEGIN RSA PRIVATE KEY-----`, and the SSH2 `---- BEGIN … ----` form.
static PEM_BEGIN: Pattern =
    LazyLock::new(|| compile(r"-{4,5} ?BEGIN ([A-Z0-9]+(?: [A-Z0-9]+)*) ?-{4,5}"));
static PEM_END: Pattern =
    LazyLock::new(|| compile(r"-{4,5} ?END ([A-Z0-9]+(?: [A-Z0-9]+)*) ?-{4,5}"));

/// A PEM block of any type: private keys are findings, and no block holds an API key.
#[derive(Debug, Clone, Copy)]
struct PemBlock {
    span: Span,
    private: bool,
}

fn is_private_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK")
}

/// PEM markers: (start, end, is a private key).
fn pem_markers(pattern: &'static Pattern, text: &str) -> Vec<(usize, usize, bool)> {
    captures(pattern, text)
        .filter_map(|c| {
            let (all, label) = (c.get(0)?, c.get(1)?);
            Some((all.start(), all.end(), is_private_label(label.as_str())))
        })
        .collect()
}

/// The PEM blocks of `text`, sorted and not overlapping. A BEGIN line's block ends at the
/// first END line before the next BEGIN, or without one after the key lines that follow
/// it. An END line of a private key that no BEGIN claimed, after key lines, is a block of
/// those lines.
fn pem_blocks(text: &str) -> Vec<PemBlock> {
    let begins = pem_markers(&PEM_BEGIN, text);
    let ends = if text.contains("END") {
        pem_markers(&PEM_END, text)
    } else {
        Vec::new()
    };
    let mut claimed = vec![false; ends.len()];
    let mut blocks = Vec::new();
    let mut k = 0;
    for (i, &(start, header_end, private)) in begins.iter().enumerate() {
        let limit = begins.get(i + 1).map_or(text.len(), |b| b.0);
        while k < ends.len() && ends[k].0 < header_end {
            k += 1;
        }
        let end = match ends.get(k) {
            Some(&(s, e, _)) if s < limit => {
                claimed[k] = true;
                k += 1;
                e.min(limit)
            }
            _ => pem_body_end(text, header_end, limit),
        };
        blocks.push(PemBlock {
            span: (start, end),
            private,
        });
    }
    let mut tails = Vec::new();
    let mut floor = 0;
    for (k, &(s, e, private)) in ends.iter().enumerate() {
        if claimed[k] || !private {
            continue;
        }
        let i = blocks.partition_point(|b| b.span.1 <= s);
        if blocks.get(i).is_some_and(|b| b.span.0 < e) {
            continue;
        }
        let after_block = i.checked_sub(1).map_or(0, |i| blocks[i].span.1);
        let body = pem_body_start(text, floor.max(after_block), s);
        if body < s {
            tails.push(PemBlock {
                span: (body, e),
                private: true,
            });
        }
        floor = e;
    }
    blocks.extend(tails);
    blocks.sort_by_key(|b| b.span);
    blocks
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// The lines of `text[from..to]`, split at newlines and at JSON-escaped `\n`.
fn lines(text: &str, from: usize, to: usize) -> impl Iterator<Item = Span> + '_ {
    let b = text.as_bytes();
    let mut pos = from;
    let mut done = from > to;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = pos;
        let mut i = pos;
        while i < to {
            if b[i] == b'\n' {
                pos = i + 1;
                return Some((start, i));
            }
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'n') && i + 1 < to {
                pos = i + 2;
                return Some((start, i));
            }
            i += 1;
        }
        done = true;
        Some((start, to))
    })
}

/// A line without its surrounding spaces and carriage return (also an escaped `\r`).
fn line_content(text: &str, (start, end): Span) -> Span {
    let line = &text[start..end];
    let line = line.trim_end_matches(['\r', ' ', '\t']);
    let line = line
        .strip_suffix("\\r")
        .unwrap_or(line)
        .trim_end_matches([' ', '\t']);
    let trimmed = line.trim_start_matches([' ', '\t']);
    let s = start + (line.len() - trimmed.len());
    (s, s + trimmed.len())
}

/// Where the key lines after a BEGIN line without END stop: base64 lines (or
/// space-separated chunks of 16 and more, a key pasted on one line), PEM headers
/// (`Proc-Type:`), at most one blank line between them; the first other line ends them.
fn pem_body_end(text: &str, from: usize, limit: usize) -> usize {
    let mut end = from;
    let mut blank = false;
    for line in lines(text, from, limit) {
        let (s, e) = line_content(text, line);
        let content = &text[s..e];
        if content.is_empty() {
            if end > from && blank {
                break;
            }
            blank = end > from;
            continue;
        }
        blank = false;
        if ["Proc-Type:", "DEK-Info:", "Comment:"]
            .iter()
            .any(|h| content.starts_with(h))
        {
            end = e;
            continue;
        }
        let p = content
            .bytes()
            .take_while(|&b| is_base64_byte(b) || b == b' ' || b == b'\t')
            .count();
        let prefix = content[..p].trim_end();
        let chunks_ok =
            !prefix.contains([' ', '\t']) || prefix.split_whitespace().all(|w| w.len() >= 16);
        if prefix.is_empty() || !chunks_ok {
            break;
        }
        end = s + prefix.len();
        if p < content.len() {
            break;
        }
    }
    end
}

/// Where the base64 lines before an END line (`end_line`) start, not before `floor`;
/// `end_line` if there are none or all are shorter than 16 characters.
fn pem_body_start(text: &str, floor: usize, end_line: usize) -> usize {
    let all: Vec<Span> = lines(text, floor, end_line).collect();
    let mut start = end_line;
    let mut long = false;
    for &line in all.iter().rev() {
        let (s, e) = line_content(text, line);
        let content = &text[s..e];
        if content.is_empty() {
            if start == end_line {
                continue;
            }
            break;
        }
        if !content.bytes().all(is_base64_byte) {
            break;
        }
        long |= content.len() >= 16;
        start = s;
    }
    if long {
        start
    } else {
        end_line
    }
}

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
