//! A tokio-util `Decoder` that splits a byte stream into whole tagged messages: Byte1 tag,
//! Int32 length counting itself but not the tag, then the body ("Message Formats").
//! Used by client/ and server/ during login and by admin/; the relay hot path has its own
//! scanner. Invariant: a length over the limit or under 4 is refused as soon as the 5-byte
//! header is in, before any memory is reserved for the body.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::ProtocolError;

/// Tag plus length word.
pub const HEADER_LEN: usize = 5;

/// Reserve at most this much ahead for a partly received body: a large (but allowed) message
/// grows the buffer as its bytes actually arrive, so a peer that announces a big length and
/// then stalls cannot make us allocate it up front.
const MAX_RESERVE: usize = 64 * 1024;

/// One whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    /// The body, without the tag and the length word.
    pub body: Bytes,
}

/// Splits tagged messages, refusing any whose length field exceeds `max_len`.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_len: usize,
}

impl FrameCodec {
    /// `max_message_len` bounds the length field, i.e. the body plus the 4 length bytes
    /// (PgBouncer's `max_packet_size` counts the same way, give or take the tag byte).
    pub fn new(max_message_len: usize) -> Self {
        FrameCodec {
            max_len: max_message_len,
        }
    }
}

/// Reads a tagged message header: the tag and the whole message's size (tag + length field +
/// body). The length field counts itself, so it must be at least 4 and at most `max_len`;
/// both are checked from the 5 header bytes alone, before any body is buffered.
pub fn message_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let tag = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len < 4 {
        return Err(ProtocolError::InvalidLength { tag, len });
    }
    if len > max_len {
        return Err(ProtocolError::MessageTooLong {
            tag,
            len,
            max: max_len,
        });
    }
    Ok(Some((tag, len + 1)))
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some((tag, total)) = message_header(src, self.max_len)? else {
            return Ok(None);
        };
        if src.len() < total {
            src.reserve((total - src.len()).min(MAX_RESERVE));
            return Ok(None);
        }
        let mut message = src.split_to(total);
        message.advance(HEADER_LEN);
        Ok(Some(Frame {
            tag,
            body: message.freeze(),
        }))
    }

    /// The default reports a bare io error; say what happened in protocol terms instead
    /// (PostgreSQL logs "unexpected EOF within message" for the same case).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::malformed(
                "connection closed in the middle of a message",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(buf).unwrap() {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn decodes_back_to_back_messages() {
        let mut bytes = message(b'Q', b"SELECT 1\0");
        bytes.extend(message(b'S', b""));
        bytes.extend(message(b'X', b""));
        let mut buf = BytesMut::from(&bytes[..]);
        let frames = decode_all(&mut FrameCodec::new(1024), &mut buf);
        let tags: Vec<u8> = frames.iter().map(|f| f.tag).collect();
        assert_eq!(tags, b"QSX");
        assert_eq!(&frames[0].body[..], b"SELECT 1\0");
        assert!(frames[1].body.is_empty());
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_rejected_from_header_without_reserving() {
        let mut codec = FrameCodec::new(1000);
        let mut buf = BytesMut::with_capacity(5);
        buf.extend_from_slice(&[b'Q', 0, 0, 3, 0xe9]); // length 1001
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::MessageTooLong {
                tag: b'Q',
                len: 1001,
                max: 1000
            }
        ));
        assert!(buf.capacity() < 1001);
        // At the limit: accepted, waiting for the body.
        let mut buf = BytesMut::from(&[b'Q', 0, 0, 3, 0xe8][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn huge_allowed_length_reserves_only_a_bounded_amount() {
        let mut codec = FrameCodec::new(usize::MAX);
        let mut buf = BytesMut::from(&[b'd', 0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 2 * MAX_RESERVE);
    }

    #[test]
    fn length_below_four_is_invalid() {
        let mut codec = FrameCodec::new(1000);
        let mut buf = BytesMut::from(&[b'Z', 0, 0, 0, 3][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ProtocolError::InvalidLength { tag: b'Z', len: 3 })
        ));
    }

    #[test]
    fn eof_mid_message_is_an_error_and_clean_eof_is_not() {
        let mut codec = FrameCodec::new(1000);
        let mut buf = BytesMut::from(&message(b'Q', b"SELECT 1\0")[..6]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(ProtocolError::Malformed { .. })
        ));
        let mut empty = BytesMut::new();
        assert_eq!(codec.decode_eof(&mut empty).unwrap(), None);
    }

    fn arb_messages() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)),
            0..12,
        )
    }

    proptest! {
        /// Feeding the stream in arbitrary chunks yields the same frames as feeding it whole.
        #[test]
        fn chunking_does_not_change_frames(
            messages in arb_messages(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let stream: Vec<u8> = messages.iter().flat_map(|(t, b)| message(*t, b)).collect();
            let expected: Vec<Frame> = messages
                .iter()
                .map(|(t, b)| Frame { tag: *t, body: Bytes::copy_from_slice(b) })
                .collect();

            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(stream.len());
            points.sort_unstable();

            let mut codec = FrameCodec::new(1024);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            let mut start = 0;
            for end in points {
                buf.extend_from_slice(&stream[start..end]);
                start = end;
                frames.extend(decode_all(&mut codec, &mut buf));
            }
            prop_assert_eq!(frames, expected);
            prop_assert!(buf.is_empty());
        }

        /// A bad length word after valid messages is reported once those frames are out,
        /// whatever the split points, and before the bad message's body is waited for.
        #[test]
        fn bad_header_is_found_at_the_same_message_whatever_the_split(
            messages in arb_messages(),
            bad_len in prop_oneof![0u32..4, 1025u32..=u32::MAX],
            tail in proptest::collection::vec(any::<u8>(), 0..32),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let mut stream: Vec<u8> = messages.iter().flat_map(|(t, b)| message(*t, b)).collect();
            stream.push(b'Q');
            stream.extend_from_slice(&bad_len.to_be_bytes());
            stream.extend_from_slice(&tail);
            let header_end = stream.len() - tail.len();

            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(stream.len());
            points.sort_unstable();

            let mut codec = FrameCodec::new(1024);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            let mut start = 0;
            let mut error = None;
            for end in points {
                buf.extend_from_slice(&stream[start..end]);
                start = end;
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(frame)) => frames.push(frame),
                        Ok(None) => break,
                        Err(e) => {
                            error = Some((e, end));
                            break;
                        }
                    }
                }
                if error.is_some() {
                    break;
                }
            }
            prop_assert_eq!(frames.len(), messages.len());
            let (error, seen) = error.expect("the bad header is refused");
            prop_assert!(seen >= header_end);
            let refused_len = match error {
                ProtocolError::InvalidLength { tag: b'Q', len }
                | ProtocolError::MessageTooLong { tag: b'Q', len, .. } => len,
                other => panic!("unexpected error {other}"),
            };
            prop_assert_eq!(refused_len, bad_len as usize);
        }

        /// Arbitrary bytes never panic, and an error only comes from a bad header.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut codec = FrameCodec::new(128);
            let mut buf = BytesMut::from(&bytes[..]);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => prop_assert!(frame.body.len() + 4 <= 128),
                    Ok(None) => break,
                    Err(ProtocolError::InvalidLength { len, .. }) => {
                        prop_assert!(len < 4);
                        break;
                    }
                    Err(ProtocolError::MessageTooLong { len, .. }) => {
                        prop_assert!(len > 128);
                        break;
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
    }
}
