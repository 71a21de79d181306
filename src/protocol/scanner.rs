//! Message boundaries in a byte stream, for the relay's hot path.
//!
//! The relay forwards bytes it does not need to understand without copying them into
//! messages; this scanner only finds where each message starts (tag + length, PostgreSQL
//! docs "Message Formats") and hands over whole bodies for the few tags the caller inspects.
//! A length outside `4..=max_len` is refused from the 5-byte header alone, before buffering.

use super::codec::message_header;
use super::ProtocolError;

/// What the bytes at the front of a buffer are.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned<'a> {
    /// A complete message of `len` bytes (tag and length included) is buffered.
    Whole { tag: u8, body: &'a [u8], len: usize },
    /// A message starts here but is not all buffered; `consumed` bytes of it may be forwarded now.
    Start { tag: u8, consumed: usize },
    /// `consumed` more bytes of a message that started earlier.
    Continue { consumed: usize },
    /// More bytes are needed before anything can be said.
    NeedMore,
}

/// Tracks the position in a stream of tagged messages across reads.
#[derive(Debug, Clone)]
pub struct Scanner {
    remaining: usize,
    max_len: usize,
}

impl Scanner {
    /// `max_len` bounds the length field (which counts itself but not the tag).
    pub fn new(max_len: usize) -> Self {
        Scanner {
            remaining: 0,
            max_len: max_len.max(4),
        }
    }

    /// The bound on the length field this scanner enforces.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// True between messages: the next byte, if any, is a tag.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0
    }

    /// Classifies the bytes at the front of `buf`. `must_buffer(tag)` says whether a message with
    /// this tag must be seen whole; other messages are streamed through in pieces.
    pub fn step<'a>(
        &mut self,
        buf: &'a [u8],
        must_buffer: impl Fn(u8) -> bool,
    ) -> Result<Scanned<'a>, ProtocolError> {
        if buf.is_empty() {
            return Ok(Scanned::NeedMore);
        }
        if self.remaining > 0 {
            let consumed = self.remaining.min(buf.len());
            self.remaining -= consumed;
            return Ok(Scanned::Continue { consumed });
        }
        let Some((tag, total)) = message_header(buf, self.max_len)? else {
            return Ok(Scanned::NeedMore);
        };
        if buf.len() >= total {
            return Ok(Scanned::Whole {
                tag,
                body: &buf[5..total],
                len: total,
            });
        }
        if must_buffer(tag) {
            return Ok(Scanned::NeedMore);
        }
        self.remaining = total - buf.len();
        Ok(Scanned::Start {
            tag,
            consumed: buf.len(),
        })
    }

    /// Bytes still needed to complete the message whose header is at the front of `buf`, for
    /// callers that must buffer it whole; `None` when the header itself is incomplete.
    pub fn whole_message_len(buf: &[u8]) -> Option<usize> {
        message_header(buf, usize::MAX)
            .ok()
            .flatten()
            .map(|(_, total)| total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// Feeds `stream` in chunks and returns (tag, forwarded bytes) per message as the relay sees it.
    fn scan_in_chunks(stream: &[u8], cuts: &[usize], inspect: u8) -> Vec<(u8, Vec<u8>)> {
        let mut scanner = Scanner::new(1 << 20);
        let mut buf: Vec<u8> = Vec::new();
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut pos = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        bounds.push(stream.len());
        bounds.sort_unstable();
        for end in bounds {
            if end < pos {
                continue;
            }
            buf.extend_from_slice(&stream[pos..end]);
            pos = end;
            loop {
                match scanner.step(&buf, |t| t == inspect).unwrap() {
                    Scanned::Whole { tag, len, body } => {
                        assert_eq!(body.len() + 5, len);
                        out.push((tag, buf[..len].to_vec()));
                        buf.drain(..len);
                    }
                    Scanned::Start { tag, consumed } => {
                        assert_ne!(tag, inspect);
                        out.push((tag, buf[..consumed].to_vec()));
                        buf.drain(..consumed);
                    }
                    Scanned::Continue { consumed } => {
                        out.last_mut()
                            .unwrap()
                            .1
                            .extend_from_slice(&buf[..consumed]);
                        buf.drain(..consumed);
                    }
                    Scanned::NeedMore => break,
                }
            }
        }
        assert!(buf.is_empty() && scanner.at_boundary());
        out
    }

    #[test]
    fn whole_and_streamed_messages() {
        let mut s = Scanner::new(1000);
        let m = msg(b'Z', b"I");
        assert_eq!(
            s.step(&m, |_| true).unwrap(),
            Scanned::Whole {
                tag: b'Z',
                body: b"I",
                len: 6
            }
        );
        let big = msg(b'D', &[7u8; 100]);
        assert_eq!(
            s.step(&big[..50], |_| false).unwrap(),
            Scanned::Start {
                tag: b'D',
                consumed: 50
            }
        );
        assert!(!s.at_boundary());
        assert_eq!(
            s.step(&big[50..], |_| false).unwrap(),
            Scanned::Continue { consumed: 55 }
        );
        assert!(s.at_boundary());
        assert_eq!(s.step(&big[..50], |_| true).unwrap(), Scanned::NeedMore);
    }

    #[test]
    fn bad_lengths_refused_from_header() {
        let mut s = Scanner::new(1000);
        let hdr = [b'Q', 0, 0, 0, 3];
        assert!(matches!(
            s.step(&hdr, |_| false),
            Err(ProtocolError::InvalidLength { .. })
        ));
        let hdr = [b'Q', 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            s.step(&hdr, |_| false),
            Err(ProtocolError::MessageTooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn same_messages_whatever_the_split(
            bodies in proptest::collection::vec((0u8..4, proptest::collection::vec(any::<u8>(), 0..300)), 1..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let tags = [b'D', b'Z', b'C', b'S'];
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (t, body) in &bodies {
                let m = msg(tags[*t as usize], body);
                expected.push((tags[*t as usize], m.clone()));
                stream.extend_from_slice(&m);
            }
            let got = scan_in_chunks(&stream, &cuts, b'Z');
            prop_assert_eq!(got, expected);
        }
    }
}
