//! Phone numbers.

use super::*;

/// `+`, a country code and groups split by at most one space, dot or dash, possibly in
/// parentheses: `+44 20 7946 0958`, `+1 (555) 123-4567`, `(+44) 20…`, `+44 (0)20…`.
pub(super) static PHONE_INTERNATIONAL: Pattern =
    LazyLock::new(|| compile(r"\(?\+[1-9][0-9]{0,3}\)?(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9]+))*"));

/// North American numbers, one separator kind per number: `(555) 123-4567`,
/// `555-123-4567`, `1-800-555-0199`, `555.123.4567`, `555 123 4567`.
pub(super) static PHONE_NANP: Pattern = LazyLock::new(|| {
    compile(concat!(
        r"\([0-9]{3}\) ?[0-9]{3}[\-. ][0-9]{4}",
        r"|(?:1-)?[0-9]{3}-[0-9]{3}-[0-9]{4}",
        r"|(?:1\.)?[0-9]{3}\.[0-9]{3}\.[0-9]{4}",
        r"|(?:1 )?[0-9]{3} [0-9]{3} [0-9]{4}",
    ))
});

/// National numbers with a trunk `0`: `020 7946 0958`, `06 12 34 56 78`,
/// `030/12345678`, `(020) 7946 0958`, unbroken `0612345678`.
pub(super) static PHONE_TRUNK: Pattern = LazyLock::new(|| {
    compile(concat!(
        r"\(0[0-9]{1,4}\) ?[0-9]{2,8}(?:[ .\-/][0-9]{2,8}){0,3}",
        r"|0[0-9]{1,4}(?:[ .\-/][0-9]{2,8}){1,4}",
        r"|0[1-9][0-9]{8,9}",
    ))
});

pub(super) fn phone_spans(text: &str) -> Vec<Span> {
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
pub(super) fn digit_runs(s: &str) -> Vec<Span> {
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

pub(super) fn international_phone(text: &str, start: usize, end: usize) -> Option<Span> {
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
pub(super) fn national_phone(text: &str, start: usize, end: usize, number: &str) -> Option<Span> {
    let glued = glued_before(text, start, true) || glued_after(text, end, true);
    (!glued && !placeholder_digits(number)).then_some((start, end))
}

pub(super) fn trunk_phone(text: &str, start: usize, end: usize) -> Option<Span> {
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
