//! RESP2 framing: encoding commands as arrays of bulk strings and parsing one reply.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::CacheError;

/// Longest bulk string accepted (Redis's own limit for a string value).
const MAX_BULK: usize = 512 * 1024 * 1024;
/// Longest header or simple-string line accepted before giving up on a stream.
const MAX_LINE: usize = 64 * 1024;
/// Deepest array nesting accepted; our commands never get nested replies.
const MAX_DEPTH: usize = 4;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(Bytes),
    Error(String),
    Integer(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// A short name of the reply's kind, for "expected ..., found ..." messages.
    pub fn kind(&self) -> String {
        match self {
            Reply::Simple(s) => format!("simple string `{}`", String::from_utf8_lossy(s)),
            Reply::Error(e) => format!("error `{e}`"),
            Reply::Integer(i) => format!("integer {i}"),
            Reply::Bulk(Some(b)) => format!("bulk string of {} bytes", b.len()),
            Reply::Bulk(None) => "null bulk string".into(),
            Reply::Array(Some(a)) => format!("array of {} items", a.len()),
            Reply::Array(None) => "null array".into(),
        }
    }
}

/// Appends `args` as one command (an array of binary-safe bulk strings).
pub(crate) fn encode(args: &[&[u8]], out: &mut BytesMut) {
    out.put_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `buf`: `Ok(None)` if more bytes are needed, otherwise
/// the reply and how many bytes it took.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, CacheError> {
    parse_at(buf, 0, 0)
}

fn protocol(message: String) -> CacheError {
    CacheError::Protocol { message }
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Reply, usize)>, CacheError> {
    let Some((line, after)) = line_at(buf, pos)? else {
        return Ok(None);
    };
    let Some((&kind, body)) = line.split_first() else {
        return Err(protocol(
            "expected a reply type byte, found an empty line".into(),
        ));
    };
    let reply = match kind {
        b'+' => Reply::Simple(Bytes::copy_from_slice(body)),
        b'-' => Reply::Error(String::from_utf8_lossy(body).into_owned()),
        b':' => Reply::Integer(number(body, ':')?),
        b'$' => {
            let Some(len) = length(body, '$', MAX_BULK)? else {
                return Ok(Some((Reply::Bulk(None), after)));
            };
            let end = after + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(protocol(format!(
                    "expected CRLF after a bulk string of {len} bytes"
                )));
            }
            return Ok(Some((
                Reply::Bulk(Some(Bytes::copy_from_slice(&buf[after..end]))),
                end + 2,
            )));
        }
        b'*' => {
            if depth >= MAX_DEPTH {
                return Err(protocol(format!(
                    "expected arrays nested at most {MAX_DEPTH} deep"
                )));
            }
            let Some(count) = length(body, '*', 1 << 20)? else {
                return Ok(Some((Reply::Array(None), after)));
            };
            let mut items = Vec::with_capacity(count.min(64));
            let mut next = after;
            for _ in 0..count {
                let Some((item, used)) = parse_at(buf, next, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                next = used;
            }
            return Ok(Some((Reply::Array(Some(items)), next)));
        }
        other => {
            return Err(protocol(format!(
                "expected a reply type byte (+ - : $ *), found {:?}",
                char::from(other)
            )))
        }
    };
    Ok(Some((reply, after)))
}

/// The line starting at `pos` without its CRLF, and where the next one starts.
fn line_at(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, CacheError> {
    let rest = &buf[pos.min(buf.len())..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) if i <= MAX_LINE => Ok(Some((&rest[..i], pos + i + 2))),
        None if rest.len() <= MAX_LINE => Ok(None),
        _ => Err(protocol(format!(
            "expected a line of at most {MAX_LINE} bytes"
        ))),
    }
}

fn number(body: &[u8], kind: char) -> Result<i64, CacheError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            protocol(format!(
                "expected an integer after `{kind}`, found `{}`",
                String::from_utf8_lossy(body)
            ))
        })
}

/// A `$`/`*` length: `None` for -1 (null), an error for other negatives or above `max`.
fn length(body: &[u8], kind: char, max: usize) -> Result<Option<usize>, CacheError> {
    match number(body, kind)? {
        -1 => Ok(None),
        n => match usize::try_from(n) {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(protocol(format!(
                "expected a length of -1 to {max} after `{kind}`, found {n}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Reply {
        let (reply, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        reply
    }

    #[test]
    fn commands_are_binary_safe_bulk_arrays() {
        let mut out = BytesMut::new();
        encode(&[b"SET", b"k\r\n", b"\0\xff"], &mut out);
        assert_eq!(
            &out[..],
            b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n\0\xff\r\n"
        );
    }

    #[test]
    fn every_reply_kind_parses() {
        assert_eq!(one(b"+OK\r\n"), Reply::Simple(Bytes::from_static(b"OK")));
        assert_eq!(one(b"-ERR bad\r\n"), Reply::Error("ERR bad".into()));
        assert_eq!(one(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(one(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(
            one(b"$4\r\na\r\nb\r\n"),
            Reply::Bulk(Some(Bytes::from_static(b"a\r\nb")))
        );
        assert_eq!(one(b"$0\r\n\r\n"), Reply::Bulk(Some(Bytes::new())));
        assert_eq!(
            one(b"*2\r\n:1\r\n$-1\r\n"),
            Reply::Array(Some(vec![Reply::Integer(1), Reply::Bulk(None)]))
        );
        assert_eq!(one(b"*-1\r\n"), Reply::Array(None));
    }

    #[test]
    fn partial_input_asks_for_more_at_every_cut() {
        let full = b"*2\r\n$5\r\nhello\r\n+OK\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (_, used) = parse(&[&full[..], b"+next\r\n"].concat()).unwrap().unwrap();
        assert_eq!(used, full.len());
    }

    #[test]
    fn malformed_input_is_a_protocol_error_saying_what_was_expected() {
        let err = |input: &[u8]| parse(input).unwrap_err().to_string();
        assert!(err(b"?x\r\n").contains("found '?'"));
        assert!(err(b":abc\r\n").contains("found `abc`"));
        assert!(err(b"$-2\r\n").contains("found -2"));
        assert!(err(b"$2\r\nabcd").contains("CRLF after a bulk string of 2 bytes"));
        assert!(err(&vec![b'+'; MAX_LINE + 10]).contains("at most"));
    }
}
