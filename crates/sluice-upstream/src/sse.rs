//! Incremental Server-Sent Events parsing: bytes in, `data` payloads out.
//!
//! Lines may be split anywhere across network chunks (even inside a UTF-8
//! character); `data:` lines of one event are joined with `\n` and the event is
//! dispatched at the blank line that ends it. Comment lines (`:`) and other
//! fields (`event:`, `id:`, `retry:`) are ignored.

/// Parser state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// Data of the current, undispatched event.
    data: Option<String>,
}

impl SseParser {
    /// Feeds one network chunk; appends the data of every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
            // Reuse the allocation for the next line.
            self.line = line;
            self.line.clear();
        }
        self.line.extend_from_slice(rest);
    }

    /// Ends the input: a last unterminated line and undispatched event are flushed.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
        }
        if let Some(data) = self.data.take() {
            out.push(data);
        }
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(data);
            }
            return;
        }
        if line.starts_with(b":") {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if field != b"data" {
            return;
        }
        let value = String::from_utf8_lossy(value);
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(&value);
            }
            None => self.data = Some(value.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            parser.push(chunk, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    const STREAM: &str = ": keep-alive\n\
        data: {\"a\":\"é\"}\n\n\
        event: message\r\n\
        id: 7\r\n\
        data:{\"b\":2}\r\n\r\n\
        \n\n\
        data: [DONE]\n\n";

    #[test]
    fn parses_whole_input() {
        assert_eq!(
            parse_in_pieces(STREAM.as_bytes(), usize::MAX),
            vec!["{\"a\":\"é\"}", "{\"b\":2}", "[DONE]"]
        );
    }

    #[test]
    fn parses_any_split() {
        for piece in 1..STREAM.len() {
            assert_eq!(
                parse_in_pieces(STREAM.as_bytes(), piece),
                vec!["{\"a\":\"é\"}", "{\"b\":2}", "[DONE]"],
                "pieces of {piece} bytes"
            );
        }
    }

    #[test]
    fn joins_multi_line_data_and_flushes_at_end() {
        assert_eq!(
            parse_in_pieces(b"data: one\ndata: two\n\ndata: tail", 3),
            vec!["one\ntwo", "tail"]
        );
    }

    #[test]
    fn ignores_comments_and_empty_events() {
        assert!(parse_in_pieces(b": ping\n\n\n: pong\n\n", 2).is_empty());
    }
}
