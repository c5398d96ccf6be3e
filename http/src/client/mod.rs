//! The HTTP client: a per-core connection pool, HTTP/1.1 and HTTP/2, names,
//! timeouts, redirects and streaming bodies, in the shape reqwest and aiohttp
//! users know.
//!
//! ```
//! # use std::convert::Infallible;
//! # use percore_http::{io::Io, rt};
//! # fn serve(listener: percore_net::TcpListener) {
//! #     drop(percore_runtime::spawn(async move {
//! #         let (stream, _) = listener.accept().await.unwrap();
//! #         let hello = hyper::service::service_fn(|_| async {
//! #             Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
//! #                 bytes::Bytes::from("hello"),
//! #             )))
//! #         });
//! #         let _ = hyper::server::conn::http1::Builder::new()
//! #             .serve_connection(Io::new(stream), hello)
//! #             .await;
//! #     }));
//! # }
//! use percore_http::client::Client;
//!
//! percore::run(async {
//!     # let listener = percore_net::TcpListener::bind("127.0.0.1:0")?;
//!     # let port = listener.local_addr()?.port();
//!     # serve(listener);
//!     let client = Client::new();
//!     let text = client
//!         .get(format!("http://localhost:{port}/"))
//!         .send()
//!         .await?
//!         .text()
//!         .await?;
//!     assert_eq!(text, "hello");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })??;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # One pool per core
//!
//! A [`Client`] is an `Rc`: cheap to clone, and `!Send`. Its connections
//! live on the core that uses it, run as tasks of that core, and are shared
//! by every clone there, with no lock and no atomic. A program on several
//! cores builds one client per core, from one [`ClientBuilder`] (which is
//! `Send` and `Clone`) handed to each.
//!
//! - **HTTP/1.1**: a connection carries one request at a time and goes back
//!   to the pool when its response body has been read to the end (dropping
//!   a response unread closes it). Idle connections are closed after
//!   [`pool_idle_timeout`](ClientBuilder::pool_idle_timeout); at most
//!   [`max_connections_per_host`](ClientBuilder::max_connections_per_host)
//!   are opened, further requests wait for one of them. A pooled connection
//!   the server has closed meanwhile costs nothing: a request that had not
//!   gone out on it goes out on a new one, and so does one that had, if it
//!   is idempotent (`GET`, `HEAD`, `PUT`, `DELETE`…) with its body in memory
//!   and no byte of an answer came.
//! - **HTTP/2**: one connection per host carries all requests at once;
//!   [`http2_prior_knowledge`](ClientBuilder::http2_prior_knowledge) speaks
//!   it to `http://` URLs (h2c), and over TLS ALPN chooses it.
//! - **Names** are looked up with the system resolver on the blocking pool
//!   ([`percore_net::lookup_host`]'s path), never on the core.
//!
//! # Why not hyper-util's client
//!
//! hyper-util's `legacy::Client` is shaped for tokio's work-stealing runtime:
//! its connectors, bodies and background tasks must be `Send`, and its pool
//! sits behind a mutex shared by all threads. Here the pool is per core and
//! nothing crosses threads, so the client is built on hyper's connection API
//! (`hyper::client::conn::{http1, http2}`) directly.
//!
//! # `https`
//!
//! `https://` URLs need the crate's `tls` feature (without it they fail with
//! an error of kind [`Unsupported`](ErrorKind::Unsupported) that says so).
//! With it, the server's certificate is checked against the system's CA
//! store, or the roots of the connector given to
//! `ClientBuilder::tls_connector`, and HTTP/2 is spoken when the server
//! picks `h2` by ALPN.

mod body;
mod config;
mod connect;
mod error;
mod pool;
mod request;
mod response;
mod send;
mod url;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use hyper::http::Method;

pub use body::Body;
pub use config::ClientBuilder;
pub use error::{Error, ErrorKind};
pub use request::RequestBuilder;
pub use response::{Response, ResponseBody};
pub use url::IntoUrl;

use config::Config;
use pool::Pool;

/// An HTTP client with a connection pool on the calling core.
///
/// Cloning it is cheap (an `Rc`) and the clones share the pool. Dropping
/// the last clone closes its idle connections. See the [module
/// docs](self) for the pool's behaviour.
///
/// # Examples
///
/// ```no_run
/// use percore_http::client::Client;
///
/// # percore::run(async {
/// let client = Client::new();
/// let response = client
///     .post("http://127.0.0.1:8080/echo")
///     .header("content-type", "text/plain")
///     .body("hello")
///     .send()
///     .await?;
/// println!("{} {:?}", response.status(), response.headers());
/// let body = response.bytes().await?;
/// # Ok::<_, percore_http::client::Error>(())
/// # }).unwrap().unwrap();
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Rc<Shared>,
}

/// What every clone of a client shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) pool: RefCell<Pool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.pool.get_mut().stop();
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// A client with the [defaults](ClientBuilder::new).
    pub fn new() -> Client {
        ClientBuilder::new().build()
    }

    /// A builder, to set timeouts, limits, redirects and HTTP/2.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    fn from_config(config: Config) -> Client {
        Client {
            shared: Rc::new(Shared {
                config,
                pool: RefCell::new(Pool::default()),
            }),
        }
    }

    /// A `GET` request to `url`.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request to `url`.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request to `url`.
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `PATCH` request to `url`.
    pub fn patch(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A `DELETE` request to `url`.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `HEAD` request to `url`.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// A request with any `method` to `url`.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_errors_cross_threads_clients_do_not() {
        fn send_sync<T: Send + Sync + Clone>() {}
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        send_sync::<ClientBuilder>();
        error::<Error>();
    }
}
