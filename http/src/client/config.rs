//! [`ClientBuilder`]: timeouts, the pool's limits, redirects, HTTP/2.

use std::time::Duration;

use hyper::http::header::{HeaderName, HeaderValue, USER_AGENT};
use hyper::http::HeaderMap;

use super::Client;

/// How a [`Client`] behaves; made by [`Client::builder`], turned into a
/// client with [`build`](ClientBuilder::build).
///
/// The builder is `Send` and `Clone`: to give each core of a multi-core
/// runtime a client of its own (each with its own pool), hand the builder to
/// every core and `build` there.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore_http::client::Client;
///
/// let builder = Client::builder()
///     .connect_timeout(Duration::from_secs(5))
///     .timeout(Duration::from_secs(30))
///     .pool_idle_timeout(Duration::from_secs(60))
///     .max_connections_per_host(64)
///     .max_redirects(5);
/// let client: Client = builder.build();
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(crate) config: Config,
}

/// What a client was built with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub pool_idle_timeout: Option<Duration>,
    pub pool_max_idle_per_host: usize,
    pub max_connections_per_host: usize,
    pub max_redirects: usize,
    pub http2_prior_knowledge: bool,
    pub nodelay: bool,
    pub default_headers: HeaderMap,
    /// The TLS connector of `https` URLs: the one given to the builder, or
    /// (filled on the first `https` connect) the system's roots. Shared by
    /// the builder's clones, so the store is read once.
    #[cfg(feature = "tls")]
    pub tls: std::sync::Arc<std::sync::OnceLock<crate::tls::TlsConnector>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            connect_timeout: None,
            timeout: None,
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 32,
            max_connections_per_host: usize::MAX,
            max_redirects: 10,
            http2_prior_knowledge: false,
            nodelay: true,
            default_headers: HeaderMap::new(),
            #[cfg(feature = "tls")]
            tls: Default::default(),
        }
    }
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// The defaults: no timeouts, idle connections closed after 90 s, at
    /// most 32 idle connections kept per host, no limit on connections per
    /// host, up to 10 redirects followed, HTTP/1.1 for `http://` URLs,
    /// `TCP_NODELAY` on.
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            config: Config::default(),
        }
    }

    /// Gives up connecting (the name's lookup included) after `limit`; the
    /// error's kind is then [`Timeout`](super::ErrorKind::Timeout) and
    /// [`is_connect`](super::Error::is_connect) is true. Default: no limit
    /// but the kernel's (about two minutes of SYN retries).
    pub fn connect_timeout(mut self, limit: Duration) -> ClientBuilder {
        self.config.connect_timeout = Some(limit);
        self
    }

    /// Gives up on a request after `limit`, counted from
    /// [`send`](super::RequestBuilder::send) to the end of the response
    /// body (connecting, redirects and reading the body included). A
    /// request's own [`timeout`](super::RequestBuilder::timeout) wins.
    /// Default: no limit.
    pub fn timeout(mut self, limit: Duration) -> ClientBuilder {
        self.config.timeout = Some(limit);
        self
    }

    /// Closes a pooled HTTP/1.1 connection, and forgets an HTTP/2 one,
    /// after it has been idle for `limit`; `None` keeps them until the
    /// server closes them. Default: 90 s.
    pub fn pool_idle_timeout(mut self, limit: impl Into<Option<Duration>>) -> ClientBuilder {
        self.config.pool_idle_timeout = limit.into();
        self
    }

    /// Keeps at most `max` idle HTTP/1.1 connections per host; a connection
    /// coming back to a full pool is closed. `0` turns keep-alive reuse off.
    /// Default: 32.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> ClientBuilder {
        self.config.pool_max_idle_per_host = max;
        self
    }

    /// Opens at most `max` HTTP/1.1 connections per host (`max` ≥ 1); a
    /// request that finds them all busy waits for one to come back or
    /// close. Default: no limit.
    pub fn max_connections_per_host(mut self, max: usize) -> ClientBuilder {
        self.config.max_connections_per_host = max.max(1);
        self
    }

    /// Follows at most `max` redirects per request (`0`: none, the 3xx
    /// response is returned as it is); one more is an error of kind
    /// [`Redirect`](super::ErrorKind::Redirect). Default: 10.
    pub fn max_redirects(mut self, max: usize) -> ClientBuilder {
        self.config.max_redirects = max;
        self
    }

    /// Speaks HTTP/2 to `http://` URLs from the first byte ("prior
    /// knowledge", h2c): one connection per host carries every request at
    /// once. Only for servers known to speak HTTP/2 without TLS. (Over TLS,
    /// HTTP/2 is chosen by ALPN when the server offers it.)
    pub fn http2_prior_knowledge(mut self) -> ClientBuilder {
        self.config.http2_prior_knowledge = true;
        self
    }

    /// Sets `TCP_NODELAY` on new connections. Default: on.
    pub fn tcp_nodelay(mut self, on: bool) -> ClientBuilder {
        self.config.nodelay = on;
        self
    }

    /// Headers every request carries unless it sets them itself.
    pub fn default_headers(mut self, headers: HeaderMap) -> ClientBuilder {
        self.config.default_headers = headers;
        self
    }

    /// The `User-Agent` header of every request (default: none is sent).
    pub fn user_agent(mut self, value: HeaderValue) -> ClientBuilder {
        self.config.default_headers.insert(USER_AGENT, value);
        self
    }

    /// Adds one default header (see [`default_headers`](ClientBuilder::default_headers)).
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> ClientBuilder {
        self.config.default_headers.insert(name, value);
        self
    }

    /// Speaks TLS to `https` URLs with `connector`: the roots it trusts, the
    /// protocols it offers by ALPN (HTTP/2 is used when the server picks
    /// `h2`). Default: the system's CA store
    /// ([`TlsConnector::native_roots`](crate::tls::TlsConnector::native_roots),
    /// read on the blocking pool at the first `https` connect), offering
    /// `h2` and `http/1.1`.
    #[cfg(feature = "tls")]
    pub fn tls_connector(mut self, connector: crate::tls::TlsConnector) -> ClientBuilder {
        self.config.tls = std::sync::Arc::new(std::sync::OnceLock::from(connector));
        self
    }

    /// The client, with an empty pool on the calling core.
    pub fn build(self) -> Client {
        Client::from_config(self.config)
    }
}
