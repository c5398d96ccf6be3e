//! Sending a request: the timeout around everything, redirects, and one
//! retry on a fresh connection when a pooled one turned out closed.

use std::rc::Rc;

use hyper::http::header::{
    HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST,
    LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use hyper::http::{HeaderMap, Method, Request, StatusCode, Uri};
use percore_runtime::time::{timeout_at, Instant};

use super::body::Body;
use super::error::{Error, ErrorKind};
use super::pool::{self, Conn};
use super::request::Parts;
use super::response::{BodyEnd, Response};
use super::url::{self, Origin};
use super::{Client, Shared};

/// How many times a request goes to another connection after the one it
/// was given could not take it.
const MAX_RETRIES: usize = 3;

/// At most this much of a redirect's body is read (so its HTTP/1.1
/// connection can be reused); a longer one is dropped with its connection.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Sends `parts` with the client's (or its own) timeout around all of it.
pub(crate) async fn send(client: &Client, mut parts: Parts) -> Result<Response, Error> {
    let shared = &client.shared;
    for (name, value) in &shared.config.default_headers {
        if !parts.headers.contains_key(name) {
            parts.headers.append(name.clone(), value.clone());
        }
    }
    let Some(limit) = parts.timeout.or(shared.config.timeout) else {
        return follow(shared, parts).await;
    };
    let url = parts.url.clone();
    let Some(deadline) = Instant::now().checked_add(limit) else {
        return follow(shared, parts).await;
    };
    match timeout_at(deadline, follow(shared, parts)).await {
        Ok(Ok(mut response)) => {
            response.set_deadline(deadline);
            Ok(response)
        }
        Ok(Err(err)) => Err(err),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("no response within {limit:?} (the request's timeout)"),
        )
        .with_url(&url)),
    }
}

/// Sends `parts`, following redirects up to the client's limit.
async fn follow(shared: &Rc<Shared>, mut parts: Parts) -> Result<Response, Error> {
    let max = shared.config.max_redirects;
    let mut followed = 0;
    loop {
        // A 307/308 sends the same body again, if it can.
        let replay = if max > 0 {
            parts.body.try_clone()
        } else {
            None
        };
        let headers = if max > 0 {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        let body = std::mem::take(&mut parts.body);
        let response = send_once(shared, &parts.method, &parts.url, headers, body).await?;
        let status = response.status();
        if max == 0 || !is_followed(status) {
            return Ok(response);
        }
        let Some(location) = response.headers().get(LOCATION) else {
            return Ok(response);
        };
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT {
            match replay {
                Some(body) => parts.body = body,
                // A streamed body is gone: the caller gets the 307/308.
                None => return Ok(response),
            }
        }
        if followed == max {
            return Err(Error::new(
                ErrorKind::Redirect,
                format!(
                    "too many redirects: {max} followed, and this one sends {status} to {:?} (raise ClientBuilder::max_redirects if this is expected)",
                    String::from_utf8_lossy(location.as_bytes())
                ),
            )
            .with_url(&parts.url));
        }
        let next = next_url(&parts.url, location)?;
        if matches!(status.as_u16(), 301..=303) {
            // The body is not sent again: POST (any method but HEAD) becomes GET.
            if parts.method != Method::HEAD {
                parts.method = Method::GET;
            }
            parts.body = Body::empty();
            for name in [
                CONTENT_LENGTH,
                CONTENT_TYPE,
                CONTENT_ENCODING,
                TRANSFER_ENCODING,
            ] {
                parts.headers.remove(name);
            }
        }
        if !url::same_origin(&parts.url, &next) {
            for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, HOST] {
                parts.headers.remove(name);
            }
        }
        drain(response).await;
        parts.url = next;
        followed += 1;
    }
}

/// The statuses followed: 301, 302, 303, 307, 308.
fn is_followed(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Where `location` points, from `base`.
fn next_url(base: &Uri, location: &HeaderValue) -> Result<Uri, Error> {
    let text = location.to_str().map_err(|err| {
        Error::new(ErrorKind::Redirect, "the Location header is not ASCII")
            .with_source(err)
            .with_url(base)
    })?;
    let next = url::resolve(base, text)?;
    url::check(&next).map_err(|err| {
        Error::new(
            ErrorKind::Redirect,
            format!("the Location {text:?} cannot be followed"),
        )
        .with_source(err)
        .with_url(base)
    })?;
    Ok(next)
}

/// Reads a short redirect body to its end, so its connection can be reused.
async fn drain(mut response: Response) {
    if response
        .content_length()
        .is_some_and(|len| len > DRAIN_LIMIT as u64)
    {
        return;
    }
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > DRAIN_LIMIT {
            return;
        }
    }
}

/// One request on one connection from the pool; if that connection turns
/// out closed before the request went out (or, for an idempotent request
/// with a body in memory, before any answer came on a reused connection),
/// again on another.
async fn send_once(
    shared: &Rc<Shared>,
    method: &Method,
    url: &Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let origin = Origin::of(url);
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = url.clone();
    *request.headers_mut() = headers;
    let mut tries = 0;
    loop {
        let pooled = pool::checkout(shared, &origin, url).await?;
        let backup = if pooled.reused && is_idempotent(method) {
            try_clone(&request)
        } else {
            None
        };
        let sent = match pooled.conn {
            Conn::H1(mut sender) => {
                to_h1(&mut request, url);
                match sender.try_send_request(request).await {
                    Ok(response) => Ok((
                        response,
                        BodyEnd::H1 {
                            shared: Rc::downgrade(shared),
                            origin: origin.clone(),
                            sender,
                        },
                    )),
                    Err(err) => Err(err),
                }
            }
            Conn::H2(mut sender) => {
                to_h2(&mut request, url);
                sender
                    .try_send_request(request)
                    .await
                    .map(|response| (response, BodyEnd::Nothing))
            }
        };
        let mut err = match sent {
            Ok((response, end)) => return Ok(Response::new(response, url.clone(), end)),
            Err(err) => err,
        };
        tries += 1;
        let unsent = err.take_message();
        let err = err.into_error();
        if tries <= MAX_RETRIES {
            if let Some(unsent) = unsent {
                request = unsent;
                continue;
            }
            if pooled.reused && may_retry(&err) {
                if let Some(backup) = backup {
                    request = backup;
                    continue;
                }
            }
        }
        // The request body's own stream failing is a body error.
        let kind = match find_ours(&err) {
            Some(ours) => ours.kind(),
            None => ErrorKind::Request,
        };
        return Err(Error::new(kind, format!("{method} request"))
            .with_source(err)
            .with_url(url));
    }
}

/// An error of this crate's among `err`'s sources (a request body's).
fn find_ours(err: &hyper::Error) -> Option<&Error> {
    let mut next = std::error::Error::source(err);
    while let Some(cause) = next {
        if let Some(ours) = cause.downcast_ref::<Error>() {
            return Some(ours);
        }
        next = cause.source();
    }
    None
}

/// HTTP/1.1 carries the path in the request line and the host in `Host`.
fn to_h1(request: &mut Request<Body>, url: &Uri) {
    *request.uri_mut() = url::origin_form(url);
    if !request.headers().contains_key(HOST) {
        if let Ok(host) = HeaderValue::try_from(url::host_header(url)) {
            request.headers_mut().insert(HOST, host);
        }
    }
}

/// HTTP/2 carries scheme and authority as pseudo-headers, from the full URL.
fn to_h2(request: &mut Request<Body>, url: &Uri) {
    *request.uri_mut() = url.clone();
    let ours = request
        .headers()
        .get(HOST)
        .is_some_and(|host| host.as_bytes() == url::host_header(url).as_bytes());
    if ours {
        request.headers_mut().remove(HOST);
    }
}

/// RFC 9110 §9.2.2: sending these twice does what sending once does.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// A copy of `request` if its body is in memory.
fn try_clone(request: &Request<Body>) -> Option<Request<Body>> {
    let mut copy = Request::new(request.body().try_clone()?);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// Whether `err` says the connection was gone before any answer: what a
/// server closing an idle keep-alive connection looks like from here.
fn may_retry(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        return true;
    }
    let mut next = std::error::Error::source(err);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        next = cause.source();
    }
    false
}
