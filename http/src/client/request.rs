//! [`RequestBuilder`]: a request's headers, query, body and timeout, then
//! [`send`](RequestBuilder::send).

use std::fmt;
use std::time::Duration;

use hyper::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use hyper::http::{HeaderMap, Method, Uri};

use super::body::Body;
use super::error::{Error, ErrorKind};
use super::response::Response;
use super::url::{self, IntoUrl, Sealed};
use super::{send, Client};

/// A request being built: made by [`Client::get`] and its siblings, sent
/// by [`send`](RequestBuilder::send).
///
/// A mistake on the way (a header value with a newline, a URL that does not
/// parse) is kept and returned by `send`, so the calls chain without a `?`
/// each.
#[must_use = "a request does nothing until it is sent: call .send().await"]
pub struct RequestBuilder {
    client: Client,
    request: Result<Parts, Error>,
}

/// A request, ready to send.
pub(crate) struct Parts {
    pub method: Method,
    pub url: Uri,
    pub headers: HeaderMap,
    pub body: Body,
    pub timeout: Option<Duration>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: impl IntoUrl) -> RequestBuilder {
        let request = Sealed::into_uri(url).and_then(|url| {
            url::check(&url)?;
            Ok(Parts {
                method,
                url,
                headers: HeaderMap::new(),
                body: Body::empty(),
                timeout: None,
            })
        });
        RequestBuilder { client, request }
    }

    fn map(mut self, f: impl FnOnce(&mut Parts) -> Result<(), Error>) -> RequestBuilder {
        if let Ok(parts) = &mut self.request {
            if let Err(err) = f(parts) {
                self.request = Err(err);
            }
        }
        self
    }

    /// Adds a header (after any of the same name).
    pub fn header<K, V>(self, name: K, value: V) -> RequestBuilder
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<hyper::http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<hyper::http::Error>,
    {
        self.map(|parts| {
            let name = HeaderName::try_from(name).map_err(|err| {
                Error::new(ErrorKind::Builder, "a header name is not valid").with_source(err.into())
            })?;
            let value = HeaderValue::try_from(value).map_err(|err| {
                Error::new(
                    ErrorKind::Builder,
                    format!("the value of the header {name} is not valid"),
                )
                .with_source(err.into())
            })?;
            parts.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds all of `headers`.
    pub fn headers(self, headers: HeaderMap) -> RequestBuilder {
        self.map(|parts| {
            let mut name = None;
            for (key, value) in headers {
                name = key.or(name);
                if let Some(name) = &name {
                    parts.headers.append(name.clone(), value);
                }
            }
            Ok(())
        })
    }

    /// `Authorization: Bearer <token>` (marked sensitive: HTTP/2 never
    /// indexes it, `Debug` hides it).
    pub fn bearer_auth(self, token: impl fmt::Display) -> RequestBuilder {
        self.map(|parts| {
            let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|err| {
                Error::new(
                    ErrorKind::Builder,
                    "the bearer token is not a valid header value",
                )
                .with_source(err)
            })?;
            value.set_sensitive(true);
            parts.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }

    /// The body: bytes in memory (`String`, `Vec<u8>`, `&'static str`,
    /// `Bytes`…) or a stream ([`Body::wrap_stream`]).
    pub fn body(self, body: impl Into<Body>) -> RequestBuilder {
        self.map(|parts| {
            parts.body = body.into();
            Ok(())
        })
    }

    /// Adds `pairs` to the URL's query string, form-encoded:
    /// `.query([("q", "a b"), ("page", "2")])` → `?q=a+b&page=2`.
    pub fn query<K, V>(self, pairs: impl IntoIterator<Item = (K, V)>) -> RequestBuilder
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.map(|parts| {
            parts.url = url::append_query(&parts.url, pairs)?;
            Ok(())
        })
    }

    /// The body as JSON, with `Content-Type: application/json` unless one is set.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> RequestBuilder {
        use hyper::http::header::CONTENT_TYPE;
        self.map(|parts| {
            let body = serde_json::to_vec(value).map_err(|err| {
                Error::new(ErrorKind::Builder, "the value could not be written as JSON")
                    .with_source(err)
            })?;
            parts.body = Body::from(body);
            if !parts.headers.contains_key(CONTENT_TYPE) {
                parts
                    .headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Ok(())
        })
    }

    /// Gives up on this request after `limit`, from `send` to the end of the
    /// response body (see [`ClientBuilder::timeout`](super::ClientBuilder::timeout)).
    pub fn timeout(self, limit: Duration) -> RequestBuilder {
        self.map(|parts| {
            parts.timeout = Some(limit);
            Ok(())
        })
    }

    /// Sends the request and waits for the response's head (following
    /// redirects); the body is read from the [`Response`].
    ///
    /// # Errors
    ///
    /// An [`Error`] saying what failed: its [`kind`](Error::kind) is
    /// [`InvalidUrl`](ErrorKind::InvalidUrl) or
    /// [`Builder`](ErrorKind::Builder) for a mistake in the request,
    /// [`Connect`](ErrorKind::Connect), [`Timeout`](ErrorKind::Timeout),
    /// [`Redirect`](ErrorKind::Redirect), [`Request`](ErrorKind::Request)
    /// for a connection that failed under the request,
    /// [`Unsupported`](ErrorKind::Unsupported) for `https` without TLS.
    /// An error status (404, 500…) is not an error here: see
    /// [`Response::error_for_status`].
    pub async fn send(self) -> Result<Response, Error> {
        let parts = self.request?;
        send::send(&self.client, parts).await
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.request {
            Ok(parts) => f
                .debug_struct("RequestBuilder")
                .field("method", &parts.method)
                .field("url", &parts.url)
                .field("headers", &parts.headers)
                .field("body", &parts.body)
                .field("timeout", &parts.timeout)
                .finish(),
            Err(err) => f
                .debug_struct("RequestBuilder")
                .field("error", err)
                .finish(),
        }
    }
}
