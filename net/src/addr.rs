//! Names and addresses: [`ToSocketAddrs`], what `connect` and `bind` accept,
//! and [`lookup_host`].
//!
//! A literal address (`SocketAddr`, `"127.0.0.1:8080"`, `("::1", 80)`) is
//! parsed in place and never leaves the core. A name (`"localhost:8080"`,
//! `("example.com", 443)`) is looked up with the system resolver
//! (`getaddrinfo(3)`, through std) on the blocking pool
//! ([`spawn_blocking`](percore_runtime::spawn_blocking)) by the async calls,
//! so a slow DNS server stalls no core.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::context;

/// What [`TcpStream::connect`](crate::TcpStream::connect), the listeners'
/// `bind` and [`lookup_host`] accept: the types std's
/// [`ToSocketAddrs`](std::net::ToSocketAddrs) is implemented for.
///
/// `SocketAddr`, `SocketAddrV4`, `SocketAddrV6`, `(IpAddr, u16)`,
/// `(Ipv4Addr, u16)`, `(Ipv6Addr, u16)`, `&[SocketAddr]`, `&str` and `String`
/// (`"host:port"`), `(&str, u16)` and `(String, u16)`, and a reference to any
/// of them.
///
/// The trait is sealed: its one method is private, so the set of types stays
/// the one above (tokio's `ToSocketAddrs` is built the same way).
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore_runtime::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let port = listener.local_addr()?.port();
///     // A name, looked up on the blocking pool.
///     let stream = TcpStream::connect(("localhost", port)).await?;
///     assert_eq!(stream.peer_addr()?.port(), port);
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub trait ToSocketAddrs: sealed::ToSocketAddrsPriv {}

pub(crate) mod sealed {
    /// The private half of [`ToSocketAddrs`](super::ToSocketAddrs).
    pub trait ToSocketAddrsPriv {
        /// The addresses, or the name to look up.
        fn to_target(&self) -> super::Target;
    }
}

use sealed::ToSocketAddrsPriv;

/// Where to connect or bind: addresses known already, or a name to look up.
#[derive(Debug, Clone)]
pub enum Target {
    /// One literal address: the fast path, no allocation.
    One(SocketAddr),
    /// Several literal addresses (`&[SocketAddr]`).
    Many(Vec<SocketAddr>),
    /// A name: `host` is `"host:port"` when `port` is `None`.
    Name {
        /// The host, or `"host:port"`.
        host: String,
        /// The port, if given apart from the host.
        port: Option<u16>,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::One(addr) => write!(f, "{addr}"),
            Target::Many(addrs) => {
                f.write_str("[")?;
                for (i, addr) in addrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{addr}")?;
                }
                f.write_str("]")
            }
            Target::Name { host, port: None } => f.write_str(host),
            Target::Name {
                host,
                port: Some(port),
            } => write!(f, "{host}:{port}"),
        }
    }
}

impl Target {
    /// The host part of a name, without its port (for the `.invalid` check).
    fn host_only(&self) -> Option<&str> {
        match self {
            Target::Name { host, port: None } => {
                Some(host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h))
            }
            Target::Name { host, .. } => Some(host),
            _ => None,
        }
    }

    /// The addresses, resolving a name on the calling thread (it blocks).
    fn resolve_here(self) -> io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs as _;
        match self {
            Target::One(addr) => Ok(vec![addr]),
            Target::Many(addrs) => Ok(addrs),
            Target::Name { .. } => {
                invalid_tld(&self)?;
                let found = match &self {
                    Target::Name { host, port: None } => host.as_str().to_socket_addrs(),
                    Target::Name {
                        host,
                        port: Some(port),
                    } => (host.as_str(), *port).to_socket_addrs(),
                    _ => unreachable!("matched a name above"),
                };
                let found: Vec<SocketAddr> = found
                    .map_err(|err| context(err, format!("look up {self}")))?
                    .collect();
                if found.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("look up {self}: the name has no address"),
                    ));
                }
                Ok(found)
            }
        }
    }
}

/// RFC 6761 §6.4: names under `.invalid` never resolve, and resolver APIs
/// should say so at once. Answered here, without asking DNS.
fn invalid_tld(target: &Target) -> io::Result<()> {
    let Some(host) = target.host_only() else {
        return Ok(());
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "invalid" || host.ends_with(".invalid") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "look up {target}: no such name (the .invalid domain never resolves, RFC 6761)"
            ),
        ));
    }
    Ok(())
}

/// The addresses of `target`: at once for literal ones; a name is looked up
/// on the blocking pool, so the core keeps running meanwhile.
pub(crate) async fn resolve(target: Target) -> io::Result<Vec<SocketAddr>> {
    match target {
        Target::One(addr) => Ok(vec![addr]),
        Target::Many(addrs) => Ok(addrs),
        name => {
            invalid_tld(&name)?;
            let what = name.to_string();
            percore_runtime::spawn_blocking(move || name.resolve_here())
                .await
                .unwrap_or_else(|err| {
                    Err(io::Error::other(format!(
                        "look up {what}: the blocking pool did not run the lookup: {err}"
                    )))
                })
        }
    }
}

/// The addresses of `target`, for the synchronous `bind`s: a name is looked
/// up on the calling thread, which blocks meanwhile.
pub(crate) fn resolve_blocking(target: Target) -> io::Result<Vec<SocketAddr>> {
    target.resolve_here()
}

/// Runs `attempt` on each address in turn until one succeeds; else the last
/// error, naming `target` (and, for a name or a list, the address tried).
pub(crate) fn each_blocking<T>(
    target: &Target,
    addrs: &[SocketAddr],
    what: &str,
    mut attempt: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for &addr in addrs {
        match attempt(addr) {
            Ok(done) => return Ok(done),
            Err(err) => last = Some((addr, err)),
        }
    }
    Err(last_error(target, addrs.len(), what, last))
}

/// The error after every address failed: the last one's, with context.
pub(crate) fn last_error(
    target: &Target,
    tried: usize,
    what: &str,
    last: Option<(SocketAddr, io::Error)>,
) -> io::Error {
    match last {
        None => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {target}: no address to try"),
        ),
        Some((_, err)) if matches!(target, Target::One(_)) => {
            context(err, format!("{what} {target}"))
        }
        Some((addr, err)) if tried == 1 => context(err, format!("{what} {target} ({addr})")),
        Some((addr, err)) => context(
            err,
            format!("{what} {target} ({addr}, the last of {tried} addresses tried)"),
        ),
    }
}

/// Looks up the addresses of `host` (`"host:port"`, `(host, port)`, or any
/// [`ToSocketAddrs`]) with the system resolver, on the blocking pool; literal
/// addresses come back at once without a lookup.
///
/// Names under `.invalid` fail at once without asking DNS (RFC 6761).
///
/// # Errors
///
/// The resolver's error (`getaddrinfo(3)`), naming `host`; `InvalidInput` for
/// a string without a port, or a name with no address.
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     let addrs: Vec<_> = percore_net::lookup_host("localhost:80").await?.collect();
///     assert!(addrs.iter().all(|addr| addr.ip().is_loopback() && addr.port() == 80));
///     let Err(err) = percore_net::lookup_host("nowhere.invalid:80").await else {
///         panic!("a name under .invalid resolved");
///     };
///     assert!(err.to_string().contains("nowhere.invalid"));
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub async fn lookup_host(host: impl ToSocketAddrs) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(resolve(host.to_target()).await?.into_iter())
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrsPriv + ?Sized> ToSocketAddrsPriv for &T {
    fn to_target(&self) -> Target {
        (**self).to_target()
    }
}

macro_rules! literal {
    ($($ty:ty => |$this:ident| $addr:expr),* $(,)?) => {$(
        impl ToSocketAddrs for $ty {}
        impl ToSocketAddrsPriv for $ty {
            fn to_target(&self) -> Target {
                let $this = self;
                Target::One($addr)
            }
        }
    )*};
}

literal! {
    SocketAddr => |a| *a,
    SocketAddrV4 => |a| SocketAddr::V4(*a),
    SocketAddrV6 => |a| SocketAddr::V6(*a),
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1),
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1),
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1),
}

impl ToSocketAddrs for [SocketAddr] {}
impl ToSocketAddrsPriv for [SocketAddr] {
    fn to_target(&self) -> Target {
        match self {
            [one] => Target::One(*one),
            many => Target::Many(many.to_vec()),
        }
    }
}

impl ToSocketAddrs for str {}
impl ToSocketAddrsPriv for str {
    fn to_target(&self) -> Target {
        // The fast path: "IP:port" parses without a lookup.
        match self.parse() {
            Ok(addr) => Target::One(addr),
            Err(_) => Target::Name {
                host: self.to_owned(),
                port: None,
            },
        }
    }
}

impl ToSocketAddrs for String {}
impl ToSocketAddrsPriv for String {
    fn to_target(&self) -> Target {
        self.as_str().to_target()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl ToSocketAddrsPriv for (&str, u16) {
    fn to_target(&self) -> Target {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Target::One(SocketAddr::new(ip, port)),
            Err(_) => Target::Name {
                host: host.to_owned(),
                port: Some(port),
            },
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl ToSocketAddrsPriv for (String, u16) {
    fn to_target(&self) -> Target {
        (self.0.as_str(), self.1).to_target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse_without_a_lookup() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        for (target, want) in [
            ("127.0.0.1:80".to_target(), v4),
            ("[::1]:443".to_target(), v6),
            (("127.0.0.1", 80).to_target(), v4),
            (("::1", 443).to_target(), v6),
            ((String::from("::1"), 443).to_target(), v6),
            (v4.to_target(), v4),
            ((Ipv4Addr::LOCALHOST, 80).to_target(), v4),
            ([v6][..].to_target(), v6),
        ] {
            match target {
                Target::One(addr) => assert_eq!(addr, want),
                other => panic!("{other:?} is not the literal {want}"),
            }
        }
    }

    #[test]
    fn names_are_looked_up() {
        assert!(matches!(
            "localhost:80".to_target(),
            Target::Name { port: None, .. }
        ));
        assert!(matches!(
            ("localhost", 80).to_target(),
            Target::Name { port: Some(80), .. }
        ));
        let found = resolve_blocking("localhost:80".to_target()).unwrap();
        assert!(found.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }

    #[test]
    fn invalid_names_fail_at_once_and_name_the_host() {
        for target in [
            "foo.invalid:80".to_target(),
            ("Foo.INVALID.", 80).to_target(),
            ("invalid", 1).to_target(),
        ] {
            let err = resolve_blocking(target.clone()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert!(err.to_string().contains(&target.to_string()), "{err}");
        }
    }
}
