//! IBANs (ISO 13616 mod-97, per-country lengths).

use super::*;

/// A country code, check digits and a BBAN, compact or in groups of four.
pub(super) static IBAN: Pattern = LazyLock::new(|| {
    compile(
        r"[A-Za-z]{2}[0-9]{2}(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,4})?)",
    )
});

/// IBAN lengths by country, from the SWIFT IBAN registry.
#[rustfmt::skip]
pub(super) const IBAN_LENGTHS: [(&str, usize); 89] = [
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

pub(super) fn iban_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    scan(&IBAN, text, |s, e| iban(text, s, e), &mut out);
    out
}

pub(super) fn iban(text: &str, start: usize, end: usize) -> Option<Span> {
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
