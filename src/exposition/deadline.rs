//! A connection whose responses must be written within a bound: a client that stops reading (or
//! reads a byte a second) would otherwise hold its task, its connection slot and the encoded body
//! forever, as nothing else in HTTP/1.1 serving times out a write.
//!
//! The clock starts at the first write of a response and stops when the response is flushed out
//! completely; progress in between does not restart it, so a slow reader is bounded too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::slots::Answering;

pub struct WriteDeadline<I> {
    io: I,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    answering: Option<Answering>,
}

impl<I> WriteDeadline<I> {
    pub fn new(io: I, timeout: Duration) -> Self {
        Self { io, timeout, sleep: Box::pin(tokio::time::sleep(timeout)), armed: false, answering: None }
    }

    /// Says when a response is out: the end of the connection's answer to its request.
    pub fn with_answering(mut self, answering: Answering) -> Self {
        self.answering = Some(answering);
        self
    }

    fn arm(&mut self) {
        if !self.armed {
            self.armed = true;
            self.sleep.as_mut().reset(Instant::now() + self.timeout);
        }
    }

    /// The answer to a write that could not proceed: still pending, or an error once the time is up.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        self.arm();
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "response write timed out"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.arm();
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.arm();
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // Everything written so far is out: the response is done.
                if std::mem::take(&mut self.armed)
                    && let Some(answering) = &self.answering
                {
                    answering.done();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.pending(cx),
            failed => failed,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.pending(cx),
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_peer_that_never_reads_times_the_write_out_and_one_that_reads_does_not() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(ours, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = io.write_all(&[0u8; 64 * 1024]).await.expect_err("nobody reads");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));

        let (ours, mut theirs2) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            theirs2.read_to_end(&mut all).await.map(|_| all.len())
        });
        let mut io = WriteDeadline::new(ours, Duration::from_millis(500));
        // Three responses, each well within the bound: the clock restarts after each flush.
        for _ in 0..3 {
            io.write_all(&[1u8; 16 * 1024]).await.expect("write");
            io.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        io.shutdown().await.expect("shutdown");
        drop(io);
        assert_eq!(reader.await.expect("join").expect("read"), 3 * 16 * 1024);
        let _ = theirs.read(&mut [0u8; 1]).await;
    }
}
