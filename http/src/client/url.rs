//! URLs as the client uses them: [`http::Uri`](hyper::http::Uri) checked for
//! what a request needs (an `http`/`https` scheme and a host), the pool's key,
//! the `Host` header, query strings, and `Location` resolved against the URL
//! it came with (RFC 3986 §5.2).
//!
//! Why `http::Uri` and not the `url` crate: hyper takes `Uri`, the user
//! already knows it from `http`, and the `url` crate's IDNA support brings a
//! dozen Unicode-table crates; hosts here are ASCII (write international
//! names in their `xn--` form).

use std::fmt::Write as _;

use hyper::http::uri::{Parts, PathAndQuery, Scheme};
use hyper::http::Uri;

use super::error::{Error, ErrorKind};

/// What a request's URL may be given as: `&str`, `String` or [`Uri`]
/// (`http://host[:port]/path?query`, scheme `http` or `https`).
pub trait IntoUrl: sealed::Sealed {}

mod sealed {
    use super::*;

    pub trait Sealed {
        fn into_uri(self) -> Result<Uri, Error>;
    }
}

pub(crate) use sealed::Sealed;

impl IntoUrl for &str {}
impl Sealed for &str {
    fn into_uri(self) -> Result<Uri, Error> {
        self.parse::<Uri>().map_err(|err| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("cannot parse {self:?} as a URL"),
            )
            .with_source(err)
        })
    }
}

impl IntoUrl for String {}
impl Sealed for String {
    fn into_uri(self) -> Result<Uri, Error> {
        self.as_str().into_uri()
    }
}

impl IntoUrl for &String {}
impl Sealed for &String {
    fn into_uri(self) -> Result<Uri, Error> {
        self.as_str().into_uri()
    }
}

impl IntoUrl for Uri {}
impl Sealed for Uri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(self)
    }
}

impl IntoUrl for &Uri {}
impl Sealed for &Uri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(self.clone())
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Secure {
    No,
    Yes,
}

/// Where a connection goes: the pool's key. Two URLs with the same key may
/// share connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub secure: Secure,
    /// The host, lowercase, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of a URL [`check`]ed already.
    pub fn of(url: &Uri) -> Origin {
        let secure = if url.scheme() == Some(&Scheme::HTTPS) {
            Secure::Yes
        } else {
            Secure::No
        };
        let default = if secure == Secure::Yes { 443 } else { 80 };
        let host = url.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Origin {
            secure,
            host: host.to_ascii_lowercase(),
            port: url.port_u16().unwrap_or(default),
        }
    }
}

/// Checks that `url` can be fetched: scheme `http` or `https`, a host, no
/// user name or password in it.
pub(crate) fn check(url: &Uri) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::new(ErrorKind::InvalidUrl, why.to_owned()).with_url(url));
    match url.scheme_str() {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
        Some(other) => return bad(&format!("the scheme {other:?} is not http or https")),
        None => return bad("no scheme: write http://host/path"),
    }
    match url.host() {
        None | Some("") => return bad("no host"),
        Some(_) => {}
    }
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return bad(
            "user name and password in the URL are not supported: set the Authorization header",
        );
    }
    Ok(())
}

/// The `Host` header for `url`: its host, and its port unless the scheme's default.
pub(crate) fn host_header(url: &Uri) -> String {
    let host = url.host().unwrap_or_default();
    match url.port_u16() {
        Some(port) if !is_default_port(url, port) => format!("{host}:{port}"),
        _ => host.to_owned(),
    }
}

fn is_default_port(url: &Uri, port: u16) -> bool {
    match url.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => port == 443,
        _ => port == 80,
    }
}

/// The origin form (`/path?query`) of `url`, what an HTTP/1.1 request line carries.
pub(crate) fn origin_form(url: &Uri) -> Uri {
    let path = url.path_and_query().map_or("/", PathAndQuery::as_str);
    let path = if path.is_empty() { "/" } else { path };
    path.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

/// `url` with `pairs` appended to its query, form-encoded
/// (`application/x-www-form-urlencoded`: space as `+`, other bytes outside
/// `A-Za-z0-9*-._` as `%XX`).
pub(crate) fn append_query<K: AsRef<str>, V: AsRef<str>>(
    url: &Uri,
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Result<Uri, Error> {
    let mut pq = url.path().to_owned();
    let mut sep = '?';
    if let Some(query) = url.query() {
        pq.push('?');
        pq.push_str(query);
        sep = '&';
    }
    for (key, value) in pairs {
        pq.push(sep);
        form_encode(&mut pq, key.as_ref());
        pq.push('=');
        form_encode(&mut pq, value.as_ref());
        sep = '&';
    }
    let mut parts = Parts::from(url.clone());
    parts.path_and_query = Some(pq.parse().map_err(|err| {
        Error::new(ErrorKind::InvalidUrl, "the query does not make a valid URL").with_source(err)
    })?);
    Uri::from_parts(parts).map_err(|err| {
        Error::new(ErrorKind::InvalidUrl, "the query does not make a valid URL").with_source(err)
    })
}

fn form_encode(out: &mut String, text: &str) {
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

/// The URL a `Location` header value points to, resolved against `base`
/// (RFC 3986 §5.2: absolute, `//authority…`, `/path`, `?query` or a path
/// relative to `base`'s directory, dot segments removed). The fragment is
/// dropped.
pub(crate) fn resolve(base: &Uri, location: &str) -> Result<Uri, Error> {
    let bad = |why: String| Error::new(ErrorKind::Redirect, why).with_url(base);
    let location = location.split('#').next().unwrap_or_default();
    if has_scheme(location) {
        let uri: Uri = location.parse().map_err(|err| {
            bad(format!("the Location {location:?} is not a URL")).with_source(err)
        })?;
        return Ok(with_path_fallback(uri));
    }
    let scheme = base.scheme().cloned().unwrap_or(Scheme::HTTP);
    if let Some(rest) = location.strip_prefix("//") {
        let text = format!("{scheme}://{rest}");
        let uri: Uri = text.parse().map_err(|err| {
            bad(format!("the Location {location:?} is not a URL")).with_source(err)
        })?;
        return Ok(with_path_fallback(uri));
    }
    let (path, query) = match location.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (location, None),
    };
    let target_path = if path.is_empty() {
        base.path().to_owned()
    } else if path.starts_with('/') {
        remove_dot_segments(path)
    } else {
        let dir = match base.path().rfind('/') {
            Some(slash) => &base.path()[..=slash],
            None => "/",
        };
        remove_dot_segments(&format!("{dir}{path}"))
    };
    let query = match (path.is_empty(), query) {
        (_, Some(query)) => Some(query),
        (true, None) => base.query(),
        (false, None) => None,
    };
    let pq = match query {
        Some(query) => format!("{target_path}?{query}"),
        None => target_path,
    };
    let mut parts = Parts::default();
    parts.scheme = Some(scheme);
    parts.authority = base.authority().cloned();
    parts.path_and_query = Some(pq.parse().map_err(|err| {
        bad(format!("the Location {location:?} is not a URL path")).with_source(err)
    })?);
    Uri::from_parts(parts)
        .map_err(|err| bad(format!("the Location {location:?} is not a URL")).with_source(err))
}

/// An absolute URL with no path gets `/`.
fn with_path_fallback(uri: Uri) -> Uri {
    if uri.path_and_query().is_some() {
        return uri;
    }
    let mut parts = Parts::from(uri.clone());
    parts.path_and_query = Some(PathAndQuery::from_static("/"));
    Uri::from_parts(parts).unwrap_or(uri)
}

/// `scheme ":"` at the start (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
fn has_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    let mut joined = String::with_capacity(path.len());
    for segment in &out {
        joined.push('/');
        joined.push_str(segment);
    }
    if joined.is_empty() {
        joined.push('/');
    }
    joined
}

/// Whether two URLs have the same scheme, host and port (for dropping
/// credentials on a redirect elsewhere).
pub(crate) fn same_origin(a: &Uri, b: &Uri) -> bool {
    Origin::of(a) == Origin::of(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: &str, location: &str) -> String {
        resolve(&base.parse().unwrap(), location)
            .unwrap()
            .to_string()
    }

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        let base = "http://a/b/c/d;p?q";
        // RFC 3986 §5.4.1, the examples a Location can be.
        assert_eq!(r(base, "g"), "http://a/b/c/g");
        assert_eq!(r(base, "./g"), "http://a/b/c/g");
        assert_eq!(r(base, "g/"), "http://a/b/c/g/");
        assert_eq!(r(base, "/g"), "http://a/g");
        assert_eq!(r(base, "//g"), "http://g/");
        assert_eq!(r(base, "?y"), "http://a/b/c/d;p?y");
        assert_eq!(r(base, "g?y"), "http://a/b/c/g?y");
        assert_eq!(r(base, "g#s"), "http://a/b/c/g");
        assert_eq!(r(base, ""), "http://a/b/c/d;p?q");
        assert_eq!(r(base, "."), "http://a/b/c/");
        assert_eq!(r(base, "./"), "http://a/b/c/");
        assert_eq!(r(base, ".."), "http://a/b/");
        assert_eq!(r(base, "../g"), "http://a/b/g");
        assert_eq!(r(base, "../.."), "http://a/");
        assert_eq!(r(base, "../../g"), "http://a/g");
        assert_eq!(r(base, "../../../g"), "http://a/g");
        assert_eq!(r(base, "/./g"), "http://a/g");
        assert_eq!(r(base, "g."), "http://a/b/c/g.");
        assert_eq!(r(base, "g/../h"), "http://a/b/c/h");
        assert_eq!(r(base, "https://other:8443/x?y"), "https://other:8443/x?y");
        assert_eq!(r(base, "http://other"), "http://other/");
    }

    #[test]
    fn a_location_that_is_no_url_is_a_redirect_error() {
        let err = resolve(&"http://a/".parse().unwrap(), "http://bad host/").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect);
    }

    #[test]
    fn only_http_urls_with_a_host_pass() {
        for bad in ["ftp://a/", "/path", "http://user:pw@a/"] {
            let url: Uri = bad.parse().unwrap();
            assert_eq!(
                check(&url).unwrap_err().kind(),
                ErrorKind::InvalidUrl,
                "{bad}"
            );
        }
        check(&"https://a:1/".parse().unwrap()).unwrap();
        check(&"http://[::1]:8080/".parse().unwrap()).unwrap();
    }

    #[test]
    fn origins_and_host_headers() {
        let url: Uri = "http://[::1]:8080/x".parse().unwrap();
        let origin = Origin::of(&url);
        assert_eq!((origin.host.as_str(), origin.port), ("::1", 8080));
        assert_eq!(host_header(&url), "[::1]:8080");
        assert_eq!(
            host_header(&"https://Example.com:443/".parse().unwrap()),
            "Example.com"
        );
        assert_eq!(
            Origin::of(&"https://Example.com/".parse().unwrap()).port,
            443
        );
        assert_eq!(
            Origin::of(&"https://Example.com/".parse().unwrap()).host,
            "example.com"
        );
        assert!(!same_origin(
            &"http://a/".parse().unwrap(),
            &"https://a/".parse().unwrap()
        ));
        assert!(same_origin(
            &"http://a/".parse().unwrap(),
            &"http://A:80/z".parse().unwrap()
        ));
    }

    #[test]
    fn queries_are_form_encoded_and_appended() {
        let url: Uri = "http://a/p?x=1".parse().unwrap();
        let got = append_query(&url, [("q", "a b&c"), ("é", "~")]).unwrap();
        assert_eq!(got.to_string(), "http://a/p?x=1&q=a+b%26c&%C3%A9=%7E");
        let url: Uri = "http://a".parse().unwrap();
        assert_eq!(
            append_query(&url, [("k", "v")]).unwrap().to_string(),
            "http://a/?k=v"
        );
        assert_eq!(origin_form(&"http://a".parse().unwrap()), "/");
    }
}
