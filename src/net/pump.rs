//! One direction of the relay: read bytes, find message boundaries, let a handler look at the
//! messages, write what is forwarded. Poll-based, with all state held here rather than in a
//! future, so the relay can stop and resume at any point (shutdown, release in transaction
//! mode) without losing or duplicating a byte. Backpressure: nothing is read while bytes are
//! waiting to be written, so a slow reader stalls its writer instead of growing a buffer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::protocol::scanner::{Scanner, Step};
use crate::protocol::ProtocolError;

/// What the handler decides for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Pass it on.
    Forward,
    /// Pass it on, then pause the pump once it is fully written.
    ForwardThenStop,
    /// Leave it unread in the buffer and pause the pump (only for whole messages).
    StopBefore,
    /// Write these bytes instead of the message (empty: drop it). Only for whole messages;
    /// the rare path for messages pgsluice rewrites, so the common one stays zero-copy.
    Replace(Bytes),
    /// `Replace`, then pause the pump once it is written.
    ReplaceThenStop(Bytes),
    /// Write these bytes first, then show the same message to the handler again.
    InsertBefore(Bytes),
}

/// Why a pump paused without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paused {
    /// The reader reached end of stream.
    Eof,
    /// The handler asked to stop.
    Stopped,
}

/// Which side failed, so the caller knows which connection is gone.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PumpError {
    #[error("read failed: {0}")]
    Read(#[source] io::Error),
    #[error("write failed: {0}")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

#[derive(Debug)]
pub(crate) struct Pump {
    buf: BytesMut,
    scanner: Scanner,
    /// Bytes at the front of `buf` that are scanned and waiting to be written.
    ready: usize,
    read_size: usize,
    needs_flush: bool,
    stop_pending: bool,
    /// Bytes written so far, to tell whether anything of a request left yet.
    written: u64,
    /// Bytes of the buffer after `ready` to drop once `ready` is written (a replaced message).
    skip: usize,
    /// Bytes to write after `ready`, before anything scanned later (replacements, injections).
    out: BytesMut,
}

impl Pump {
    pub(crate) fn new(max_message_len: usize, read_size: usize) -> Self {
        Pump {
            buf: BytesMut::new(),
            scanner: Scanner::new(max_message_len),
            ready: 0,
            read_size: read_size.max(1024),
            needs_flush: false,
            stop_pending: false,
            written: 0,
            skip: 0,
            out: BytesMut::new(),
        }
    }

    /// True when everything read has been written and the writer saw only whole messages.
    pub(crate) fn is_clean(&self) -> bool {
        self.ready == 0
            && self.skip == 0
            && self.out.is_empty()
            && self.scanner.at_boundary()
            && !self.needs_flush
    }

    /// Queues bytes to write before anything read later; only between messages.
    pub(crate) fn inject(&mut self, bytes: &[u8]) {
        debug_assert!(self.ready == 0 && self.skip == 0 && self.scanner.at_boundary());
        self.out.extend_from_slice(bytes);
    }

    /// True while part of a streamed message has been written and the rest has not: the
    /// writer's peer is inside a message, so nothing else may be written to it.
    pub(crate) fn mid_message(&self) -> bool {
        !self.scanner.at_boundary()
    }

    /// True while a message has begun arriving and has not all arrived: part of it passed
    /// on (`mid_message`) or held until it is whole. Bytes after the last scanned message are
    /// always an unfinished one, since every poll scans all that is whole.
    pub(crate) fn awaiting_rest(&self) -> bool {
        self.mid_message() || self.buf.len() > self.ready + self.skip
    }

    /// True when no unprocessed bytes are buffered either.
    pub(crate) fn is_empty(&self) -> bool {
        self.is_clean() && self.buf.is_empty()
    }

    /// Moves bytes from `reader` to `writer` until the handler stops it, the reader ends, an
    /// error occurs, or it has to wait. `must_buffer(tag)` names the messages the handler
    /// needs whole; every other message is streamed and the handler sees only its tag.
    pub(crate) fn poll_pump<R, W, H>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        must_buffer: fn(u8) -> bool,
        handler: &mut H,
    ) -> Poll<Result<Paused, PumpError>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
        H: FnMut(u8, Option<&[u8]>) -> Verdict,
    {
        loop {
            ready!(self.poll_write_ready(cx, writer))?;
            if self.stop_pending && self.scanner.at_boundary() {
                self.stop_pending = false;
                return Poll::Ready(Ok(Paused::Stopped));
            }
            if self.scan(must_buffer, handler)? || self.stop_pending && self.scanner.at_boundary() {
                continue;
            }
            if ready!(self.poll_fill(cx, reader))? == 0 {
                return Poll::Ready(Ok(Paused::Eof));
            }
        }
    }

    /// Writes the scanned bytes and flushes once they are all out.
    fn poll_write_ready<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut W,
    ) -> Poll<Result<(), PumpError>> {
        while self.ready > 0 {
            let n = ready!(Pin::new(&mut *writer).poll_write(cx, &self.buf[..self.ready]))
                .map_err(PumpError::Write)?;
            if n == 0 {
                return Poll::Ready(Err(PumpError::Write(io::ErrorKind::WriteZero.into())));
            }
            self.buf.advance(n);
            self.ready -= n;
            self.written += n as u64;
            self.needs_flush = true;
        }
        if self.skip > 0 {
            self.buf.advance(self.skip);
            self.skip = 0;
        }
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut *writer).poll_write(cx, &self.out))
                .map_err(PumpError::Write)?;
            if n == 0 {
                return Poll::Ready(Err(PumpError::Write(io::ErrorKind::WriteZero.into())));
            }
            self.out.advance(n);
            self.written += n as u64;
            self.needs_flush = true;
        }
        if self.needs_flush {
            ready!(Pin::new(&mut *writer).poll_flush(cx)).map_err(PumpError::Write)?;
            self.needs_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Scans buffered bytes; returns true when some became ready to write.
    fn scan<H>(&mut self, must_buffer: fn(u8) -> bool, handler: &mut H) -> Result<bool, PumpError>
    where
        H: FnMut(u8, Option<&[u8]>) -> Verdict,
    {
        while !(self.stop_pending && self.scanner.at_boundary()) {
            match self.scanner.step(&self.buf[self.ready..], must_buffer)? {
                Step::Whole { tag, body, len } => match handler(tag, Some(body)) {
                    Verdict::Forward => self.ready += len,
                    Verdict::ForwardThenStop => {
                        self.ready += len;
                        self.stop_pending = true;
                    }
                    Verdict::StopBefore => self.stop_pending = true,
                    Verdict::Replace(bytes) => {
                        self.replace(len, &bytes);
                        // The replacement must go out before anything scanned after it.
                        break;
                    }
                    Verdict::ReplaceThenStop(bytes) => {
                        self.replace(len, &bytes);
                        self.stop_pending = true;
                    }
                    Verdict::InsertBefore(bytes) => {
                        self.out.extend_from_slice(&bytes);
                        break;
                    }
                },
                Step::Start { tag, consumed } => match handler(tag, None) {
                    Verdict::Forward => self.ready += consumed,
                    Verdict::InsertBefore(bytes) => {
                        // Not taken after all: the scanner goes back to this message's start.
                        self.scanner = Scanner::new(self.scanner.max_len());
                        self.out.extend_from_slice(&bytes);
                        break;
                    }
                    // Streamed messages cannot be replaced; stopping waits for their end.
                    _ => {
                        self.stop_pending = true;
                        self.ready += consumed;
                    }
                },
                Step::Continue { consumed } => self.ready += consumed,
                Step::NeedMore => break,
            }
        }
        Ok(self.ready > 0 || self.skip > 0 || !self.out.is_empty())
    }

    fn replace(&mut self, len: usize, bytes: &[u8]) {
        self.skip = len;
        self.out.extend_from_slice(bytes);
    }

    /// Reads more bytes; returns how many (0 = end of stream).
    fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
    ) -> Poll<Result<usize, PumpError>> {
        // A message that must be seen whole may be larger than one read.
        let want = match Scanner::whole_message_len(&self.buf) {
            Some(total) if self.scanner.at_boundary() && total > self.buf.len() => {
                (total - self.buf.len()).max(self.read_size)
            }
            _ => self.read_size,
        };
        if self.buf.capacity() - self.buf.len() < want / 2 {
            self.buf.reserve(want);
        }
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(reader),
            cx,
            &mut self.buf
        ))
        .map_err(PumpError::Read)?;
        Poll::Ready(Ok(n))
    }

    /// One non-blocking read attempt, for checking whether an idle peer said something.
    pub(crate) fn poll_fill_once<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
    ) -> Poll<Result<usize, PumpError>> {
        self.poll_fill(cx, reader)
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Forgets that the buffered bytes were scanned, so they can be sent again elsewhere.
    /// Only for a pump that started at a message boundary with nothing pending and has written
    /// nothing since: then the buffer still begins with a whole message.
    pub(crate) fn rewind(&mut self) {
        self.ready = 0;
        self.skip = 0;
        self.out.clear();
        self.stop_pending = false;
        self.needs_flush = false;
        self.scanner = Scanner::new(self.scanner.max_len());
    }

    /// The tag of the next message, when nothing is pending and its first byte is buffered.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        (self.ready == 0 && self.skip == 0 && self.out.is_empty() && self.scanner.at_boundary())
            .then(|| self.buf.first().copied())
            .flatten()
    }

    /// The tag of the next request once it may be handed to a server: its whole first
    /// message is buffered, or that message is too long to hold back (over the read-ahead
    /// bound of `read_while_waiting`) and its first byte is. A client that sent half a
    /// message and stalled must not hold a server in transaction pooling while it stalls.
    pub(crate) fn peek_request(&self) -> Option<u8> {
        let tag = self.peek_tag()?;
        if self.buf.len() < 5 {
            return None;
        }
        match Scanner::whole_message_len(&self.buf) {
            Some(total) if total > self.buf.len() && total <= self.read_size * 16 => None,
            // Whole, too long to hold back, or a bad length the relay will refuse.
            _ => Some(tag),
        }
    }

    /// Reads more bytes even if some are buffered (the rest of a message); false at end of
    /// stream.
    pub(crate) async fn read_more<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<bool, PumpError> {
        Ok(std::future::poll_fn(|cx| self.poll_fill(cx, reader)).await? > 0)
    }

    /// Reads ahead while the caller waits for something else (a server), to notice the peer
    /// leaving; stops reading once a few reads' worth are buffered so a flood cannot grow it.
    /// False at end of stream.
    pub(crate) async fn read_while_waiting<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<bool, PumpError> {
        if self.buf.len() >= self.read_size * 16 {
            std::future::pending::<()>().await;
        }
        Ok(std::future::poll_fn(|cx| self.poll_fill(cx, reader)).await? > 0)
    }

    /// Puts bytes read by someone else (the login code) in front of the next read.
    pub(crate) fn prefill(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn forwards_byte_exact_and_stops_where_asked() {
        let mut input = msg(b'D', &[1u8; 70_000]);
        input.extend(msg(b'Z', b"I"));
        input.extend(msg(b'C', b"SELECT 1\0"));
        let mut reader: &[u8] = &input;
        let mut out: Vec<u8> = Vec::new();
        let mut pump = Pump::new(1 << 20, 4096);
        let mut seen = Vec::new();
        let mut handler = |tag: u8, body: Option<&[u8]>| {
            seen.push((tag, body.map(|b| b.to_vec())));
            if tag == b'Z' {
                Verdict::ForwardThenStop
            } else {
                Verdict::Forward
            }
        };
        let r = std::future::poll_fn(|cx| {
            pump.poll_pump(cx, &mut reader, &mut out, |t| t == b'Z', &mut handler)
        })
        .await
        .unwrap();
        assert_eq!(r, Paused::Stopped);
        assert_eq!(out, input[..70_005 + 6]);
        assert_eq!(seen[0], (b'D', None));
        assert_eq!(seen[1], (b'Z', Some(b"I".to_vec())));
        assert!(pump.is_clean());
    }

    #[tokio::test]
    async fn stop_before_leaves_message_unforwarded() {
        let mut input = msg(b'Q', b"select 1\0");
        input.extend(msg(b'X', b""));
        let mut reader: &[u8] = &input;
        let mut out: Vec<u8> = Vec::new();
        let mut pump = Pump::new(1 << 20, 4096);
        let mut handler = |tag: u8, _: Option<&[u8]>| {
            if tag == b'X' {
                Verdict::StopBefore
            } else {
                Verdict::Forward
            }
        };
        let r = std::future::poll_fn(|cx| {
            pump.poll_pump(cx, &mut reader, &mut out, |t| t == b'X', &mut handler)
        })
        .await
        .unwrap();
        assert_eq!(r, Paused::Stopped);
        assert_eq!(out, msg(b'Q', b"select 1\0"));
    }

    #[tokio::test]
    async fn replaced_and_dropped_messages_keep_their_place() {
        let mut input = msg(b'1', b"");
        input.extend(msg(b'2', b""));
        input.extend(msg(b'3', b""));
        input.extend(msg(b'Z', b"I"));
        let mut reader: &[u8] = &input;
        let mut out: Vec<u8> = Vec::new();
        let mut pump = Pump::new(1 << 20, 4096);
        let mut handler = |tag: u8, _: Option<&[u8]>| match tag {
            // Dropped: a reply the client did not ask for.
            b'1' => Verdict::Replace(Bytes::new()),
            // Something synthesized in front of a real message.
            b'3' => {
                let mut b = msg(b'n', b"");
                b.extend(msg(b'3', b""));
                Verdict::Replace(Bytes::from(b))
            }
            b'Z' => Verdict::ForwardThenStop,
            _ => Verdict::Forward,
        };
        let r = std::future::poll_fn(|cx| {
            pump.poll_pump(cx, &mut reader, &mut out, |_| true, &mut handler)
        })
        .await
        .unwrap();
        assert_eq!(r, Paused::Stopped);
        let mut expected = msg(b'2', b"");
        expected.extend(msg(b'n', b""));
        expected.extend(msg(b'3', b""));
        expected.extend(msg(b'Z', b"I"));
        assert_eq!(out, expected);
        assert!(pump.is_clean());
    }

    #[tokio::test]
    async fn a_request_is_ready_only_once_its_first_message_is_whole() {
        let query = msg(b'Q', b"select 1\0");
        let mut pump = Pump::new(1 << 20, 1024);
        let mut reader: &[u8] = &query[..7];
        assert!(pump.read_more(&mut reader).await.unwrap());
        assert_eq!(pump.peek_tag(), Some(b'Q'));
        assert_eq!(
            pump.peek_request(),
            None,
            "half a Query is not a request yet"
        );
        let mut reader: &[u8] = &query[7..];
        assert!(pump.read_more(&mut reader).await.unwrap());
        assert_eq!(pump.peek_request(), Some(b'Q'));

        // Longer than the read-ahead bound: handed over from its first bytes, streamed.
        let big = msg(b'Q', &[b'a'; 20_000]);
        let mut pump = Pump::new(1 << 20, 1024);
        let mut reader: &[u8] = &big[..100];
        assert!(pump.read_more(&mut reader).await.unwrap());
        assert_eq!(pump.peek_request(), Some(b'Q'));
        assert!(
            pump.awaiting_rest() && !pump.mid_message(),
            "held, not passed on"
        );
    }

    #[tokio::test]
    async fn a_message_cut_short_is_mid_message_once_part_of_it_is_passed_on() {
        let big = msg(b'd', &[b'a'; 20_000]);
        let mut reader: &[u8] = &big[..10_000];
        let mut out: Vec<u8> = Vec::new();
        let mut pump = Pump::new(1 << 20, 4096);
        let r = std::future::poll_fn(|cx| {
            pump.poll_pump(cx, &mut reader, &mut out, |_| false, &mut |_, _| {
                Verdict::Forward
            })
        })
        .await
        .unwrap();
        assert_eq!(r, Paused::Eof);
        assert_eq!(out.len(), 10_000, "streamed as it came");
        assert!(pump.mid_message() && pump.awaiting_rest());
    }

    #[tokio::test]
    async fn oversized_message_is_refused() {
        let input = msg(b'Q', &[b'a'; 5000]);
        let mut reader: &[u8] = &input;
        let mut out: Vec<u8> = Vec::new();
        let mut pump = Pump::new(1024, 4096);
        let r = std::future::poll_fn(|cx| {
            pump.poll_pump(cx, &mut reader, &mut out, |_| false, &mut |_, _| {
                Verdict::Forward
            })
        })
        .await;
        assert!(matches!(
            r,
            Err(PumpError::Protocol(ProtocolError::MessageTooLong { .. }))
        ));
        assert!(out.is_empty());
    }
}
