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

use crate::protocol::scanner::{Scanned, Scanner};
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

/// The largest first read of an idle client's wait, on the stack (requests are usually far
/// smaller; a larger one is read on in the normal way).
const IDLE_READ: usize = 8192;

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
                Scanned::Whole { tag, body, len } => match handler(tag, Some(body)) {
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
                Scanned::Start { tag, consumed } => match handler(tag, None) {
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
                Scanned::Continue { consumed } => self.ready += consumed,
                Scanned::NeedMore => break,
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
    /// stream. With nothing buffered, the read buffer's memory is given back first and the
    /// wait reads into the stack: an idle client then holds no buffer at all (RSS per
    /// idle client), at the price of one allocation and a copy of the first read when it
    /// speaks again.
    pub(crate) async fn read_more<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<bool, PumpError> {
        if self.is_empty() {
            self.buf = BytesMut::new();
        }
        if self.buf.capacity() > 0 {
            return Ok(std::future::poll_fn(|cx| self.poll_fill(cx, reader)).await? > 0);
        }
        std::future::poll_fn(|cx| {
            let mut stack = [0u8; IDLE_READ];
            let len = self.read_size.min(IDLE_READ);
            let mut read = tokio::io::ReadBuf::new(&mut stack[..len]);
            ready!(Pin::new(&mut *reader).poll_read(cx, &mut read)).map_err(PumpError::Read)?;
            let got = read.filled();
            if !got.is_empty() {
                self.buf.reserve(self.read_size.max(got.len()));
                self.buf.extend_from_slice(got);
            }
            Poll::Ready(Ok(!got.is_empty()))
        })
        .await
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
mod tests;
