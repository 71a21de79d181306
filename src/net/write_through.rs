//! Makes a buffering writer (a TLS stream) behave like a socket: a write completes only once
//! its bytes have left for the peer. tokio-rustls accepts plaintext and may keep the records in
//! memory when the socket is full; code written for TCP (the login exchange, the admin console,
//! `send_fatal`) writes with `write_all` and never flushes, and would leave a reply stranded.
//! Callers must retry a pending write with the same bytes, as `write_all` and the pump do.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) struct WriteThrough<S> {
    inner: S,
    /// Bytes of the current write already accepted by `inner`, not yet reported.
    accepted: usize,
}

impl<S> WriteThrough<S> {
    pub(crate) fn new(inner: S) -> Self {
        WriteThrough { inner, accepted: 0 }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteThrough<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteThrough<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.accepted == 0 {
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            self.accepted = n;
        }
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        Poll::Ready(Ok(std::mem::take(&mut self.accepted)))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

    #[tokio::test]
    async fn a_completed_write_has_reached_the_peer_without_a_flush() {
        let (mut far, near) = tokio::io::duplex(16);
        // BufWriter stands in for a TLS stream: it holds written bytes until flushed.
        let mut w = WriteThrough::new(BufWriter::new(near));
        let writer = tokio::spawn(async move {
            w.write_all(&[7u8; 100]).await.unwrap();
            w
        });
        let mut got = vec![0u8; 100];
        far.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|b| *b == 7));
        let mut w = writer.await.unwrap();
        w.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        far.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"x");
    }
}
