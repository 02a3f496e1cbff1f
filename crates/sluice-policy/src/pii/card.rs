//! Payment card numbers (Luhn).

use super::*;

/// Digit runs joined by single spaces or dashes; cards are looked for inside.
pub(super) static DIGIT_CHAIN: Pattern = LazyLock::new(|| compile(r"[0-9]+(?:[ \-][0-9]+)*"));

pub(super) fn card_spans(text: &str) -> Vec<Span> {
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
pub(super) fn card_number(s: &str) -> bool {
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
pub(super) fn luhn(digits: &[u8]) -> bool {
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
