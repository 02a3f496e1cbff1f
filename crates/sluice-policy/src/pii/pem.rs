//! PEM private-key blocks.

use super::*;

/// `-----BEGIN RSA PRIVATE KEY-----`, and the SSH2 `---- BEGIN … ----` form.
pub(super) static PEM_BEGIN: Pattern =
    LazyLock::new(|| compile(r"-{4,5} ?BEGIN ([A-Z0-9]+(?: [A-Z0-9]+)*) ?-{4,5}"));
pub(super) static PEM_END: Pattern =
    LazyLock::new(|| compile(r"-{4,5} ?END ([A-Z0-9]+(?: [A-Z0-9]+)*) ?-{4,5}"));

/// A PEM block of any type: private keys are findings, and no block holds an API key.
#[derive(Debug, Clone, Copy)]
pub(super) struct PemBlock {
    pub(super) span: Span,
    pub(super) private: bool,
}

pub(super) fn is_private_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK")
}

/// PEM markers: (start, end, is a private key).
pub(super) fn pem_markers(pattern: &'static Pattern, text: &str) -> Vec<(usize, usize, bool)> {
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
pub(super) fn pem_blocks(text: &str) -> Vec<PemBlock> {
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

pub(super) fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// The lines of `text[from..to]`, split at newlines and at JSON-escaped `\n`.
pub(super) fn lines(text: &str, from: usize, to: usize) -> impl Iterator<Item = Span> + '_ {
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
pub(super) fn line_content(text: &str, (start, end): Span) -> Span {
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
pub(super) fn pem_body_end(text: &str, from: usize, limit: usize) -> usize {
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
pub(super) fn pem_body_start(text: &str, floor: usize, end_line: usize) -> usize {
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
