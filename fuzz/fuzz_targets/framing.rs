//! Fuzzes the framing of tagged messages: `protocol::codec::FrameCodec` (login, admin console)
//! and `protocol::scanner::Scanner` (the relay's hot path), on the same byte stream cut at
//! fuzzer-chosen read boundaries. Checks: no panic; the chunked decode yields the same frames,
//! the same error and the same leftover as decoding the stream whole; the scanner forwards
//! exactly the bytes of those frames and fails at the same message; a declared length never
//! makes the codec reserve more than it has received plus a bounded read-ahead.
//!
//! Input: byte 0 picks the length limit, bytes 1..9 seed the chunk sizes, the rest is the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgsluice::protocol::codec::{Frame, FrameCodec};
use pgsluice::protocol::scanner::{Scanned, Scanner};
use tokio_util::codec::Decoder;

const LIMITS: [usize; 8] = [4, 5, 8, 16, 64, 1024, 1 << 20, u32::MAX as usize];

/// What a decoder made of a stream: the frames, then the error or the bytes left over.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    error: Option<String>,
    leftover: usize,
}

/// Read sizes from 1 to 32 bytes, from a seed (xorshift: cheap, deterministic).
struct Chunks(u64);

impl Chunks {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 32) as usize + 1
    }
}

fn drain(codec: &mut FrameCodec, buf: &mut BytesMut, frames: &mut Vec<Frame>) -> Option<String> {
    loop {
        match codec.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return None,
            Err(e) => return Some(e.to_string()),
        }
    }
}

fn decode_whole(limit: usize, stream: &[u8]) -> Outcome {
    let mut codec = FrameCodec::new(limit);
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    let error = drain(&mut codec, &mut buf, &mut frames);
    if error.is_none() {
        // At end of stream, a partial message is an error and a clean end is not.
        let mut probe = buf.clone();
        let eof = codec.decode_eof(&mut probe);
        assert_eq!(eof.is_err(), !buf.is_empty());
    }
    Outcome {
        frames,
        error,
        leftover: buf.len(),
    }
}

fn decode_chunked(limit: usize, stream: &[u8], seed: u64) -> Outcome {
    let mut codec = FrameCodec::new(limit);
    let mut chunks = Chunks(seed | 1);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + chunks.next()).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        if let Some(error) = drain(&mut codec, &mut buf, &mut frames) {
            return Outcome {
                frames,
                error: Some(error),
                leftover: 0,
            };
        }
        // A big declared length reserves at most a bounded read-ahead beyond what arrived.
        assert!(
            buf.capacity() <= 2 * (buf.len() + 64 * 1024) + 64,
            "capacity {} for {} buffered bytes",
            buf.capacity(),
            buf.len()
        );
    }
    Outcome {
        frames,
        error: None,
        leftover: buf.len(),
    }
}

/// Runs the scanner as the relay does and returns the bytes forwarded per message.
fn scan_chunked(limit: usize, stream: &[u8], seed: u64) -> (Vec<Vec<u8>>, Option<String>) {
    let mut scanner = Scanner::new(limit);
    let mut chunks = Chunks(seed.rotate_left(17) | 1);
    // Buffer only some tags whole, as the relay does for the few it inspects.
    let must_buffer = |tag: u8| tag.is_multiple_of(3);
    let mut buf: Vec<u8> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + chunks.next()).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        loop {
            let step = match scanner.step(&buf, must_buffer) {
                Ok(step) => step,
                Err(e) => return (messages, Some(e.to_string())),
            };
            let consumed = match step {
                Scanned::Whole { tag, body, len } => {
                    assert_eq!((tag, body.len() + 5), (buf[0], len));
                    messages.push(buf[..len].to_vec());
                    len
                }
                Scanned::Start { tag, consumed } => {
                    assert!(!must_buffer(tag) && consumed > 0 && !scanner.at_boundary());
                    messages.push(buf[..consumed].to_vec());
                    consumed
                }
                Scanned::Continue { consumed } => {
                    messages
                        .last_mut()
                        .expect("a message started")
                        .extend(&buf[..consumed]);
                    consumed
                }
                Scanned::NeedMore => break,
            };
            buf.drain(..consumed);
        }
    }
    // A message still streaming at the end is incomplete: drop it, like the codec's leftover.
    if !scanner.at_boundary() {
        messages.pop();
    }
    (messages, None)
}

fn wire(frame: &Frame) -> Vec<u8> {
    let mut out = vec![frame.tag];
    out.extend_from_slice(&(frame.body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&frame.body);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some((seed, stream)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let limit = LIMITS[usize::from(pick) % LIMITS.len()];
    let seed = u64::from_le_bytes(*seed);

    let whole = decode_whole(limit, stream);
    for frame in &whole.frames {
        assert!(frame.body.len() + 4 <= limit);
    }
    let chunked = decode_chunked(limit, stream, seed);
    if whole.error.is_some() {
        assert_eq!(chunked.frames, whole.frames);
        assert_eq!(chunked.error, whole.error);
    } else {
        assert_eq!(chunked, whole);
    }

    let (scanned, scan_error) = scan_chunked(limit, stream, seed);
    let expected: Vec<Vec<u8>> = whole.frames.iter().map(wire).collect();
    assert_eq!(scan_error, whole.error);
    assert_eq!(scanned, expected);
});
