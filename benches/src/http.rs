//! Just enough HTTP/1.1 for a hello-world keep-alive benchmark: the request the
//! load generator sends, the response the servers send, and incremental
//! readers for both sides that look at each byte once.

/// The body every server here answers with.
pub const BODY: &[u8] = b"Hello, world!";

/// The whole response of the hello-world servers (percore's and the peers').
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// Answer to a request that cannot be read; the connection closes after it.
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Most bytes of head either reader accepts.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most bytes of body either reader accepts.
pub const MAX_BODY: usize = 1024 * 1024;

/// The keep-alive GET the load generator sends to `host`.
pub fn request(host: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: percore-bench\r\n\r\n").into_bytes()
}

/// What one complete message (request or response) head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, `\r\n\r\n` included.
    pub head_len: usize,
    /// `Content-Length` (0 without one).
    pub body_len: usize,
    /// The response status (0 for a request).
    pub status: u16,
    /// `Connection: close` was sent (or HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// Why a message could not be read; the connection should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not HTTP/1.x, or a `Content-Length` that is not a number.
    Invalid,
    /// Head or body over [`MAX_HEAD`] / [`MAX_BODY`], or a chunked body.
    Unsupported,
}

/// Cuts a byte stream into messages. Feed it bytes (`buf`), then call
/// [`next_message`](Cutter::next_message) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Cutter {
    /// Buffered bytes not yet consumed.
    pub buf: Vec<u8>,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
    /// The head of the message whose body is still arriving.
    pending: Option<Head>,
    /// Bytes consumed at the front of `buf` but not yet drained (drained lazily).
    consumed: usize,
    responses: bool,
}

impl Cutter {
    /// A reader of requests (`responses: false`) or responses (`true`).
    pub fn new(responses: bool) -> Cutter {
        Cutter {
            buf: Vec::with_capacity(4096),
            scanned: 0,
            pending: None,
            consumed: 0,
            responses,
        }
    }

    /// Whether every byte buffered has been consumed and no message is half
    /// read: a moment the connection holds nothing in hand.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none() && self.consumed == self.buf.len()
    }

    /// Makes room for one more read; call before reading into `buf`'s spare capacity.
    pub fn prepare_read(&mut self) {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.scanned = self.scanned.saturating_sub(self.consumed);
            self.consumed = 0;
        }
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
    }

    /// The next complete message in the buffered bytes (consumed), `None` if
    /// more bytes are needed.
    ///
    /// # Errors
    ///
    /// The bytes are not a message this reader accepts.
    pub fn next_message(&mut self) -> Result<Option<Head>, Malformed> {
        let head = match self.pending.take() {
            Some(head) => head,
            None => match self.parse_head()? {
                Some(head) => head,
                None => return Ok(None),
            },
        };
        let total = head.head_len + head.body_len;
        if self.buf.len() - self.consumed < total {
            self.pending = Some(head);
            return Ok(None);
        }
        self.consumed += total;
        self.scanned = self.consumed;
        Ok(Some(head))
    }

    fn parse_head(&mut self) -> Result<Option<Head>, Malformed> {
        let start = self.consumed;
        let from = self.scanned.max(start + 3) - 3;
        let Some(end) = self.buf[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4)
        else {
            self.scanned = self.buf.len();
            if self.buf.len() - start > MAX_HEAD {
                return Err(Malformed::Unsupported);
            }
            return Ok(None);
        };
        let bytes = &self.buf[start..end];
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let (version, status, parsed_headers) = if self.responses {
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(bytes) {
                Ok(httparse::Status::Complete(_)) => {}
                _ => return Err(Malformed::Invalid),
            }
            (
                response.version,
                response.code.unwrap_or(0),
                response.headers.len(),
            )
        } else {
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(bytes) {
                Ok(httparse::Status::Complete(_)) => {}
                _ => return Err(Malformed::Invalid),
            }
            (request.version, 0, request.headers.len())
        };
        let mut head = Head {
            head_len: end - start,
            body_len: 0,
            status,
            close: version == Some(0),
        };
        for header in &headers[..parsed_headers] {
            if header.name.eq_ignore_ascii_case("content-length") {
                head.body_len = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(Malformed::Invalid)?;
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(Malformed::Unsupported);
            } else if header.name.eq_ignore_ascii_case("connection") {
                head.close = header.value.eq_ignore_ascii_case(b"close");
            }
        }
        if head.body_len > MAX_BODY {
            return Err(Malformed::Unsupported);
        }
        Ok(Some(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_arriving_in_pieces_are_cut_once_whole() {
        let mut cutter = Cutter::new(true);
        let two = [RESPONSE, RESPONSE].concat();
        let mut got = Vec::new();
        for &byte in &two {
            cutter.prepare_read();
            cutter.buf.push(byte);
            while let Some(head) = cutter.next_message().unwrap() {
                got.push(head);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].status, 200);
        assert_eq!(got[0].body_len, BODY.len());
        assert_eq!(got[0].head_len + got[0].body_len, RESPONSE.len());
    }

    #[test]
    fn pipelined_requests_and_bad_ones() {
        let mut cutter = Cutter::new(false);
        cutter.buf.extend_from_slice(&request("x"));
        cutter.buf.extend_from_slice(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        );
        let first = cutter.next_message().unwrap().unwrap();
        let second = cutter.next_message().unwrap().unwrap();
        assert!(!first.close && second.close);
        assert_eq!(second.body_len, 3);
        assert_eq!(cutter.next_message(), Ok(None));

        let mut cutter = Cutter::new(false);
        cutter.buf.extend_from_slice(b"garbage\x00\r\n\r\n");
        assert_eq!(cutter.next_message(), Err(Malformed::Invalid));
        let mut cutter = Cutter::new(false);
        cutter
            .buf
            .extend_from_slice(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(cutter.next_message(), Err(Malformed::Unsupported));
    }
}
