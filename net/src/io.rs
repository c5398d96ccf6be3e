//! The owned-buffer read and write methods every stream type and half has,
//! written once: each type supplies `fn socket(&self) -> &Socket`.

/// Defines `read`, `readv` and `read_exact` on a type with a `socket()` accessor.
macro_rules! read_methods {
    () => {
        /// Reads once into `buf`'s spare capacity (after its initialised bytes),
        /// returning the byte count and the buffer; `Ok(0)` is end of stream (or a
        /// buffer without spare capacity). One `recv(2)` SQE, no allocation.
        ///
        /// # Errors
        ///
        /// The raw OS error of `recv(2)` (`ECONNRESET`…); the buffer comes back either way.
        ///
        /// # Cancel safety
        ///
        /// Dropping the future cancels the read; bytes the kernel received into
        /// the buffer before the cancel took effect are lost with the buffer.
        pub async fn read<B: percore_runtime::IoBufMut>(
            &self,
            buf: B,
        ) -> percore_runtime::BufResult<usize, B> {
            self.socket().read(buf).await
        }

        /// Receives as data arrives, into buffers of `ring`: one multishot
        /// `recv` for the whole stream, no buffer held while waiting (see
        /// [`RecvStream`](crate::RecvStream)).
        pub fn recv_stream(&self, ring: &percore_runtime::buf_ring::BufRing) -> crate::RecvStream {
            self.socket().recv_stream(ring)
        }

        /// Reads once, filling each buffer's spare capacity in order (`readv(2)`).
        ///
        /// # Errors
        ///
        /// The raw OS error of `readv(2)`; the buffers come back either way.
        pub async fn readv<B: percore_runtime::IoBufMut>(
            &self,
            bufs: Vec<B>,
        ) -> percore_runtime::BufResult<usize, Vec<B>> {
            self.socket().readv(bufs).await
        }

        /// Reads until `buf` is full (its initialised length reaches its capacity);
        /// pass a `Slice` of it to fill only a range.
        ///
        /// # Errors
        ///
        /// `UnexpectedEof` if the peer closes first, or the first read error; the
        /// bytes read so far stay in the returned buffer.
        ///
        /// # Cancel safety
        ///
        /// Not cancel safe: dropping the future drops the buffer with the bytes
        /// read so far, and the stream's position in the byte stream is lost.
        pub async fn read_exact<B: percore_runtime::IoBufMut>(
            &self,
            buf: B,
        ) -> percore_runtime::BufResult<(), B> {
            self.socket().read_exact(buf).await
        }
    };
}

/// Defines `write`, `writev` and `write_all` on a type with a `socket()` accessor.
macro_rules! write_methods {
    () => {
        /// Writes `buf`'s initialised bytes once (`send(2)` with `MSG_NOSIGNAL`),
        /// returning how many were sent and the buffer. One SQE, no allocation.
        ///
        /// A write completes only when the kernel took the bytes, so a peer that
        /// does not read makes writes wait: that is the backpressure.
        ///
        /// # Errors
        ///
        /// The raw OS error of `send(2)` (`EPIPE`, `ECONNRESET`…); the buffer comes back.
        ///
        /// # Cancel safety
        ///
        /// Dropping the future cancels the send, but the kernel may already have
        /// taken some or all of the bytes: the count is then unknown.
        pub async fn write<B: percore_runtime::IoBuf>(
            &self,
            buf: B,
        ) -> percore_runtime::BufResult<usize, B> {
            self.socket().write(buf).await
        }

        /// Writes `buf`'s initialised bytes once without copying them into the
        /// kernel (`IORING_OP_SEND_ZC`): the NIC or the peer socket reads them
        /// from `buf` itself, which comes back once the kernel let go of it.
        ///
        /// Worth it for large buffers (tens of KiB and up); for small ones the
        /// extra completion costs more than the copy saves, so use `write`.
        /// TCP only: other sockets give `EOPNOTSUPP`.
        ///
        /// # Errors
        ///
        /// The raw OS error of the send; the buffer comes back either way.
        ///
        /// # Cancel safety
        ///
        /// As `write`; a dropped future keeps the buffer alive until the kernel
        /// is done with it.
        pub async fn write_zc<B: percore_runtime::IoBuf>(
            &self,
            buf: B,
        ) -> percore_runtime::BufResult<usize, B> {
            self.socket().write_zc(buf).await
        }

        /// Writes all of `buf`'s initialised bytes with zero-copy sends (see
        /// `write_zc`), resending the rest after partial writes.
        ///
        /// # Errors
        ///
        /// The first send error, or `WriteZero`; how much was sent is then unknown.
        pub async fn write_all_zc<B: percore_runtime::IoBuf>(
            &self,
            buf: B,
        ) -> percore_runtime::BufResult<(), B> {
            self.socket().write_all_zc(buf).await
        }

        /// Writes the buffers' initialised bytes in order, once (`sendmsg(2)`).
        ///
        /// # Errors
        ///
        /// The raw OS error of `sendmsg(2)`; the buffers come back either way.
        pub async fn writev<B: percore_runtime::IoBuf>(
            &self,
            bufs: Vec<B>,
        ) -> percore_runtime::BufResult<usize, Vec<B>> {
            self.socket().writev(bufs).await
        }

        /// Writes all of `buf`'s initialised bytes, resending the rest after
        /// partial writes.
        ///
        /// # Errors
        ///
        /// The first write error, or `WriteZero`; how much was sent is then unknown.
        ///
        /// # Cancel safety
        ///
        /// Not cancel safe: after a drop, an unknown prefix of the buffer was sent.
        pub async fn write_all<B: percore_runtime::IoBuf>(
            &self,
            buf: B,
        ) -> percore_runtime::BufResult<(), B> {
            self.socket().write_all(buf).await
        }
    };
}

pub(crate) use {read_methods, write_methods};
