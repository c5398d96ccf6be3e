//! A small HTTP/1.1 server core: an incremental, bounded request reader and
//! the keep-alive connection loop of the `http` example.
//!
//! The reader looks for the end of the head (`\r\n\r\n`) only in bytes it has
//! not looked at yet, so a request that arrives a byte at a time costs O(n), not
//! O(n²); the head is parsed (with `httparse`) once, when it is complete. It
//! buffers at most [`MAX_HEAD`] bytes of head and [`MAX_BODY`] of body:
//! a longer head is answered 431, a larger body 413, a malformed request 400,
//! a chunked one 501 — and the connection is closed after an error.

use std::io;

use percore::net::TcpStream;

/// Most bytes of request line and headers accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most bytes of request body accepted (it is read and ignored).
pub const MAX_BODY: usize = 64 * 1024;
/// Most headers accepted.
const MAX_HEADERS: usize = 64;

/// A request whose head is parsed; what the response needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request target, e.g. `/index.html`.
    pub path: String,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// HTTP/1.0 (`false`: HTTP/1.1).
    pub http10: bool,
    head_len: usize,
    body_len: usize,
}

/// An error response that ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 400: not a valid HTTP/1.x request.
    BadRequest,
    /// 413: body larger than [`MAX_BODY`].
    TooLarge,
    /// 431: head larger than [`MAX_HEAD`], or too many headers.
    HeadersTooLarge,
    /// 501: a transfer coding (chunked) this server does not read.
    NotImplemented,
}

impl Reject {
    /// The status line and a short body.
    pub fn response(self) -> &'static [u8] {
        match self {
            Reject::BadRequest => {
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad request\n"
            }
            Reject::TooLarge => {
                b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large"
            }
            Reject::HeadersTooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 17\r\n\r\nheaders too large"
            }
            Reject::NotImplemented => {
                b"HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 15\r\n\r\nnot implemented"
            }
        }
    }
}

/// What [`RequestReader::next_request`] found in the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request (head and body); its bytes are consumed.
    Request(Request),
    /// More bytes are needed.
    Partial,
    /// The request is refused; answer and close.
    Reject(Reject),
}

/// Buffers a connection's bytes and cuts them into requests, incrementally.
#[derive(Debug)]
pub struct RequestReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
    /// The current request, once its head is parsed, while its body arrives.
    head: Option<Request>,
}

impl Default for RequestReader {
    fn default() -> RequestReader {
        RequestReader::new()
    }
}

impl RequestReader {
    /// An empty reader with a 4 KiB buffer.
    pub fn new() -> RequestReader {
        RequestReader {
            buf: Vec::with_capacity(4096),
            scanned: 0,
            head: None,
        }
    }

    /// The buffer to read more bytes into (after its initialised bytes), with
    /// spare capacity guaranteed; give it back with [`put_buf`](RequestReader::put_buf).
    pub fn take_buf(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.len() == buf.capacity() {
            // Grows only while a request is incomplete, and `next_request` rejects one
            // beyond the limits, so this stays below MAX_HEAD + MAX_BODY + 4 KiB.
            buf.reserve(4096);
        }
        buf
    }

    /// Gives back the buffer from [`take_buf`](RequestReader::take_buf).
    pub fn put_buf(&mut self, buf: Vec<u8>) {
        self.buf = buf;
    }

    /// The next request in the buffered bytes, if it is complete.
    pub fn next_request(&mut self) -> Parsed {
        let head = match self.head.take() {
            Some(head) => head,
            None => match self.parse_head() {
                Ok(Some(head)) => head,
                Ok(None) => return Parsed::Partial,
                Err(reject) => return Parsed::Reject(reject),
            },
        };
        let total = head.head_len + head.body_len;
        if self.buf.len() < total {
            self.head = Some(head);
            return Parsed::Partial;
        }
        self.buf.drain(..total);
        self.scanned = 0;
        Parsed::Request(head)
    }

    /// Finds the end of the head in the new bytes and parses the head once.
    fn parse_head(&mut self) -> Result<Option<Request>, Reject> {
        let from = self.scanned.saturating_sub(3);
        let Some(end) = find_head_end(&self.buf[from..]).map(|i| from + i + 4) else {
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_HEAD {
                return Err(Reject::HeadersTooLarge);
            }
            return Ok(None);
        };
        if end > MAX_HEAD {
            return Err(Reject::HeadersTooLarge);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeadersTooLarge),
            _ => return Err(Reject::BadRequest),
        }
        let http10 = request.version == Some(0);
        let mut keep_alive = !http10;
        let mut body_len = 0;
        for header in request.headers.iter() {
            let value = header.value;
            if header.name.eq_ignore_ascii_case("content-length") {
                body_len = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or(Reject::BadRequest)?;
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(Reject::NotImplemented);
            } else if header.name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if value.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
        if body_len > MAX_BODY {
            return Err(Reject::TooLarge);
        }
        Ok(Some(Request {
            path: request.path.unwrap_or("/").to_owned(),
            keep_alive,
            http10,
            head_len: end,
            body_len,
        }))
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

const BODY: &str = "Hello, world!";

/// Appends the response to `request` to `out`.
pub fn respond(request: &Request, out: &mut Vec<u8>) {
    let version = if request.http10 { "1.0" } else { "1.1" };
    let connection = match (request.keep_alive, request.http10) {
        (true, true) => "Connection: keep-alive\r\n",
        (false, false) => "Connection: close\r\n",
        _ => "",
    };
    out.extend_from_slice(
        format!(
            "HTTP/{version} 200 OK\r\nServer: percore\r\nContent-Type: text/plain\r\n{connection}Content-Length: {}\r\n\r\n{BODY}",
            BODY.len()
        )
        .as_bytes(),
    );
}

/// Serves one connection: every complete request buffered is answered in one
/// write (pipelining), then more is read; ends at end of stream, on a
/// `Connection: close`, after an error response, or once `finishing()` says
/// the server shuts down (after answering what was received).
///
/// # Errors
///
/// Any read or write error of the connection (a reset peer…).
pub async fn serve(stream: &TcpStream, finishing: impl Fn() -> bool) -> io::Result<()> {
    let mut reader = RequestReader::new();
    let mut out = Vec::with_capacity(512);
    // Set after a read during a shutdown: answer what is here, then close.
    let mut finish_now = false;
    loop {
        let mut close = finish_now;
        let mut reject = None;
        loop {
            match reader.next_request() {
                Parsed::Request(request) => {
                    respond(&request, &mut out);
                    if !request.keep_alive {
                        close = true;
                        break;
                    }
                }
                Parsed::Partial => break,
                Parsed::Reject(why) => {
                    reject = Some(why);
                    break;
                }
            }
        }
        if let Some(why) = reject {
            out.extend_from_slice(why.response());
            close = true;
        }
        if !out.is_empty() {
            let (res, back) = stream.write_all(out).await;
            res?;
            out = back;
            out.clear();
        }
        if close {
            stream.shutdown(std::net::Shutdown::Write).await?;
            if reject.is_some() {
                return linger(stream, reader.take_buf()).await;
            }
            return Ok(());
        }
        let (res, buf) = stream.read(reader.take_buf()).await;
        reader.put_buf(buf);
        if res? == 0 {
            return Ok(());
        }
        finish_now = finishing();
    }
}

/// After an error response, reads (and drops) what the client still sends, up
/// to a bound, so closing with unread bytes does not reset the connection
/// before the client has read the response.
async fn linger(stream: &TcpStream, mut buf: Vec<u8>) -> io::Result<()> {
    let mut left = MAX_HEAD + MAX_BODY;
    while left > 0 {
        buf.clear();
        let (res, back) = stream.read(buf).await;
        buf = back;
        match res? {
            0 => break,
            n => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(reader: &mut RequestReader, bytes: &[u8]) {
        let mut buf = reader.take_buf();
        buf.extend_from_slice(bytes);
        reader.put_buf(buf);
    }

    #[test]
    fn a_request_arriving_byte_by_byte_is_found_once_whole() {
        let mut reader = RequestReader::new();
        let request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        for (i, &byte) in request.iter().enumerate() {
            assert_eq!(reader.next_request(), Parsed::Partial, "after {i} bytes");
            feed(&mut reader, &[byte]);
        }
        let Parsed::Request(parsed) = reader.next_request() else {
            panic!("complete");
        };
        assert_eq!((parsed.path.as_str(), parsed.keep_alive), ("/a", true));
        assert_eq!(reader.next_request(), Parsed::Partial);
    }

    #[test]
    fn pipelined_requests_and_bodies_are_cut_apart() {
        let mut reader = RequestReader::new();
        feed(
            &mut reader,
            b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /q HTTP/1.0\r\n\r\n",
        );
        let Parsed::Request(first) = reader.next_request() else {
            panic!("first")
        };
        let Parsed::Request(second) = reader.next_request() else {
            panic!("second")
        };
        assert_eq!(first.path, "/p");
        assert_eq!((second.path.as_str(), second.keep_alive), ("/q", false));
    }

    #[test]
    fn bad_oversized_and_chunked_requests_are_refused() {
        let mut reader = RequestReader::new();
        feed(&mut reader, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");
        assert_eq!(reader.next_request(), Parsed::Reject(Reject::BadRequest));

        let mut reader = RequestReader::new();
        feed(&mut reader, b"GET / HTTP/1.1\r\nX: ");
        feed(&mut reader, &vec![b'a'; MAX_HEAD]);
        assert_eq!(
            reader.next_request(),
            Parsed::Reject(Reject::HeadersTooLarge)
        );

        let mut reader = RequestReader::new();
        feed(
            &mut reader,
            b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        );
        assert_eq!(reader.next_request(), Parsed::Reject(Reject::TooLarge));

        let mut reader = RequestReader::new();
        feed(
            &mut reader,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(
            reader.next_request(),
            Parsed::Reject(Reject::NotImplemented)
        );

        let mut reader = RequestReader::new();
        feed(&mut reader, b"\x00\x01\x02garbage\r\n\r\n");
        assert_eq!(reader.next_request(), Parsed::Reject(Reject::BadRequest));
    }

    #[test]
    fn the_server_answers_keep_alive_400_and_431_over_a_socket() {
        use percore::net::TcpListener;
        percore::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            drop(percore::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    drop(percore::spawn(
                        async move { serve(&stream, || false).await },
                    ));
                }
            }));
            async fn exchange(addr: std::net::SocketAddr, request: Vec<u8>) -> String {
                let stream = TcpStream::connect(addr).await.unwrap();
                let (res, _) = stream.write_all(request).await;
                res.unwrap();
                stream.shutdown(std::net::Shutdown::Write).await.unwrap();
                let mut got = Vec::with_capacity(64 * 1024);
                loop {
                    let (res, buf) = stream.read(got).await;
                    got = buf;
                    if res.unwrap() == 0 {
                        return String::from_utf8_lossy(&got).into_owned();
                    }
                }
            }
            let two = exchange(
                addr,
                b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
            )
            .await;
            assert_eq!(two.matches("HTTP/1.1 200 OK").count(), 2, "{two}");
            let bad = exchange(addr, b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
            assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
            let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
            huge.extend(std::iter::repeat_n(b'a', MAX_HEAD * 2));
            let big = exchange(addr, huge).await;
            assert!(big.starts_with("HTTP/1.1 431"), "{big}");
        })
        .unwrap();
    }
}
