//! E-mail addresses.

use super::*;

/// The letters and digits of addresses: Latin (ASCII included), Greek and Cyrillic, so an
/// address written right next to CJK text (`連絡先はjane@example.comです`) is cut at it.
macro_rules! email_char {
    () => {
        r"\p{Latin}\p{Greek}\p{Cyrillic}0-9"
    };
}

pub(super) static EMAIL: Pattern = LazyLock::new(|| {
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

pub(super) fn email_spans(text: &str) -> Vec<Span> {
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
pub(super) fn in_url_authority(text: &str, start: usize) -> bool {
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
pub(super) fn is_retina_asset(domain: &str) -> bool {
    let Some(host) = domain.rfind('.').map(|i| &domain[..i]) else {
        return false;
    };
    host.strip_suffix('x').is_some_and(|scale| {
        scale.starts_with(|c: char| c.is_ascii_digit())
            && scale.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    })
}
