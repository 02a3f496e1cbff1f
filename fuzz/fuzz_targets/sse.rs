//! The SSE decoder on any bytes, split into network chunks anywhere: the events are the same
//! as when the bytes arrive at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_upstream::SseParser;

fn events(chunks: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk, &mut out);
    }
    parser.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size; the rest is the stream.
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let whole = events(&[stream]);
    let pieces: Vec<&[u8]> = stream.chunks(usize::from(size).max(1)).collect();
    assert_eq!(events(&pieces), whole);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(events(&bytes), whole);
});
