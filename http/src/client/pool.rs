//! The per-core connection pool: for each origin, the idle HTTP/1.1
//! connections, the count of open ones with the requests waiting for one,
//! and the one HTTP/2 connection every request shares.
//!
//! The pool lives in the client's `Rc`, on the core that uses the client:
//! no lock, no atomic. Connections run as tasks on the same core and hold
//! only a `Weak` back to it, so dropping the last clone of a client drops
//! its idle connections (their tasks then close them).
//!
//! An HTTP/1.1 connection leaves the pool for one request and comes back
//! when its response body has been read to the end ([`put_back`]); until
//! then hyper could not send another request on it anyway.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::mem;
use std::rc::{Rc, Weak};
use std::time::Duration;

use hyper::http::Uri;
use percore_runtime::sync::oneshot;
use percore_runtime::time::{sleep_until, Instant};
use percore_runtime::JoinHandle;

use super::connect::{self, H1Sender, H2Sender};
use super::error::{Error, ErrorKind};
use super::url::{Origin, Secure};
use super::Shared;

/// The pool's state, in the client's `RefCell`. Never borrowed across an
/// `.await`; senders and guards leave it before they are dropped.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    hosts: HashMap<Origin, Host>,
    /// The task that closes idle connections when their time is up.
    reaper: Option<JoinHandle<()>>,
}

impl Pool {
    /// Stops the reaper (the client is going away).
    pub(crate) fn stop(&mut self) {
        if let Some(reaper) = self.reaper.take() {
            reaper.abort();
        }
    }
}

#[derive(Debug, Default)]
struct Host {
    /// HTTP/1.1 connections at rest, the most recently used last.
    idle: Vec<Idle>,
    /// HTTP/1.1 connections open or being opened (each holds a [`Slot`]).
    open: usize,
    /// Requests waiting for a connection (all `open` are busy, at the limit).
    waiters: VecDeque<oneshot::Sender<Handoff>>,
    h2: H2,
}

impl Host {
    fn is_unused(&self) -> bool {
        self.idle.is_empty()
            && self.open == 0
            && self.waiters.is_empty()
            && matches!(self.h2, H2::None)
    }
}

#[derive(Debug)]
struct Idle {
    sender: H1Sender,
    since: Instant,
}

#[derive(Debug, Default)]
enum H2 {
    #[default]
    None,
    /// A request is connecting; these wait for its connection.
    Connecting(Vec<oneshot::Sender<H2Wake>>),
    Ready {
        sender: H2Sender,
        used: Instant,
    },
}

/// What a waiting HTTP/1.1 request is handed.
#[derive(Debug)]
enum Handoff {
    /// A connection whose last response has ended.
    Conn(H1Sender),
    /// Room to open a connection (counted in `open` already).
    Slot(Slot),
}

#[derive(Debug)]
enum H2Wake {
    Ready(H2Sender),
    Failed(String),
}

/// One HTTP/1.1 connection counted in its host's `open`; dropping it (when
/// the connection's task ends, or its connect failed) gives the room to the
/// first waiting request, or uncounts it.
#[derive(Debug)]
pub(crate) struct Slot {
    shared: Weak<Shared>,
    origin: Origin,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let waiter = {
            let mut pool = shared.pool.borrow_mut();
            let Entry::Occupied(mut entry) = pool.hosts.entry(self.origin.clone()) else {
                return;
            };
            let host = entry.get_mut();
            let waiter = pop_live(&mut host.waiters);
            if waiter.is_none() {
                host.open = host.open.saturating_sub(1);
                if host.is_unused() {
                    entry.remove();
                }
            }
            waiter
        };
        if let Some(waiter) = waiter {
            // The waiter is alive (checked on this core just now), so the
            // room goes to it; were it not, the slot's drop would run again.
            let slot = Slot {
                shared: self.shared.clone(),
                origin: self.origin.clone(),
            };
            let _ = waiter.send(Handoff::Slot(slot));
        }
    }
}

/// Marks an HTTP/2 connect in progress; dropped before it finished (the
/// request was cancelled), it lets a waiting request connect instead.
struct Connecting {
    shared: Weak<Shared>,
    origin: Origin,
    armed: bool,
}

impl Drop for Connecting {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut pool = shared.pool.borrow_mut();
        if let Some(host) = pool.hosts.get_mut(&self.origin) {
            if matches!(host.h2, H2::Connecting(_)) {
                // Its waiters see their channel closed and try again.
                let old = mem::take(&mut host.h2);
                drop(pool);
                drop(old);
            }
        }
    }
}

/// The first waiter whose request still waits.
fn pop_live<T>(waiters: &mut VecDeque<oneshot::Sender<T>>) -> Option<oneshot::Sender<T>> {
    while let Some(waiter) = waiters.pop_front() {
        if !waiter.is_closed() {
            return Some(waiter);
        }
    }
    None
}

/// A connection for one request.
#[derive(Debug)]
pub(crate) struct Pooled {
    pub conn: Conn,
    /// It carried a request before (a reused one may have been closed by
    /// the server meanwhile).
    pub reused: bool,
}

/// The sending half of an HTTP/1.1 or HTTP/2 connection.
#[derive(Debug)]
pub(crate) enum Conn {
    H1(H1Sender),
    H2(H2Sender),
}

/// What [`take`] found, decided under one borrow of the pool.
enum Take {
    H1(H1Sender),
    H2(H2Sender),
    Connect(Slot),
    Wait(oneshot::Receiver<Handoff>),
    ConnectH2(Connecting),
    WaitH2(oneshot::Receiver<H2Wake>),
}

/// A connection to `origin`: the shared HTTP/2 one, an idle HTTP/1.1 one, a
/// new one, or, at the per-host limit, the first that comes back.
pub(crate) async fn checkout(
    shared: &Rc<Shared>,
    origin: &Origin,
    url: &Uri,
) -> Result<Pooled, Error> {
    loop {
        let fresh = |conn| {
            Ok(Pooled {
                conn,
                reused: false,
            })
        };
        match take(shared, origin) {
            Take::H2(sender) => {
                return Ok(Pooled {
                    conn: Conn::H2(sender),
                    reused: true,
                })
            }
            Take::H1(sender) => {
                if let Some(sender) = ready(sender).await {
                    return Ok(Pooled {
                        conn: Conn::H1(sender),
                        reused: true,
                    });
                }
            }
            Take::Connect(slot) => {
                return open(shared, origin, slot)
                    .await
                    .map_err(|e| e.with_url(url))
            }
            Take::Wait(waiting) => match waiting.await {
                Ok(Handoff::Conn(sender)) => {
                    if let Some(sender) = ready(sender).await {
                        return Ok(Pooled {
                            conn: Conn::H1(sender),
                            reused: true,
                        });
                    }
                }
                Ok(Handoff::Slot(slot)) => {
                    return open(shared, origin, slot)
                        .await
                        .map_err(|e| e.with_url(url))
                }
                Err(_) => {}
            },
            Take::ConnectH2(connecting) => {
                return open_h2(shared, origin, connecting)
                    .await
                    .map(Conn::H2)
                    .map_or_else(|e| Err(e.with_url(url)), fresh)
            }
            Take::WaitH2(waiting) => match waiting.await {
                Ok(H2Wake::Ready(sender)) => return fresh(Conn::H2(sender)),
                Ok(H2Wake::Failed(why)) => {
                    return Err(Error::new(ErrorKind::Connect, why)
                        .in_connect()
                        .with_url(url))
                }
                Err(_) => {}
            },
        }
    }
}

/// The decision of [`checkout`], under one borrow of the pool.
fn take(shared: &Rc<Shared>, origin: &Origin) -> Take {
    let config = &shared.config;
    let now = Instant::now();
    // Declared before the borrow, so dropped after it.
    let mut stale: Vec<Idle> = Vec::new();
    let mut stale_h2: Vec<H2> = Vec::new();
    let mut pool = shared.pool.borrow_mut();
    let host = pool.hosts.entry(origin.clone()).or_default();
    match &mut host.h2 {
        H2::Ready { sender, used }
            if !sender.is_closed() && !expired(*used, now, config.pool_idle_timeout) =>
        {
            *used = now;
            return Take::H2(sender.clone());
        }
        H2::Ready { .. } => stale_h2.push(mem::take(&mut host.h2)),
        H2::Connecting(waiters) => {
            let (tx, rx) = oneshot::channel();
            waiters.push(tx);
            return Take::WaitH2(rx);
        }
        H2::None => {}
    }
    if config.http2_prior_knowledge && origin.secure == Secure::No {
        host.h2 = H2::Connecting(Vec::new());
        return Take::ConnectH2(Connecting {
            shared: Rc::downgrade(shared),
            origin: origin.clone(),
            armed: true,
        });
    }
    while let Some(idle) = host.idle.pop() {
        if idle.sender.is_closed() || expired(idle.since, now, config.pool_idle_timeout) {
            stale.push(idle);
            continue;
        }
        return Take::H1(idle.sender);
    }
    if host.open < config.max_connections_per_host {
        host.open += 1;
        return Take::Connect(Slot {
            shared: Rc::downgrade(shared),
            origin: origin.clone(),
        });
    }
    let (tx, rx) = oneshot::channel();
    host.waiters.push_back(tx);
    Take::Wait(rx)
}

/// Whether a connection idle since `since` has outlived `limit`.
fn expired(since: Instant, now: Instant, limit: Option<Duration>) -> bool {
    limit.is_some_and(|limit| now.saturating_duration_since(since) >= limit)
}

/// `sender` once its connection can take a request; `None` if it closed
/// meanwhile (the server closed it, or its last response said `close`).
async fn ready(mut sender: H1Sender) -> Option<H1Sender> {
    sender.ready().await.ok().map(|()| sender)
}

/// Opens an HTTP/1.1 connection in `slot` (or HTTP/2, if TLS's ALPN chose it).
async fn open(shared: &Rc<Shared>, origin: &Origin, slot: Slot) -> Result<Pooled, Error> {
    let transport = connect::connect(&shared.config, origin).await?;
    if transport.alpn_h2() {
        drop(slot);
        let sender = connect::handshake_h2(transport).await?;
        install_h2(shared, origin, &sender);
        return Ok(Pooled {
            conn: Conn::H2(sender),
            reused: false,
        });
    }
    let sender = connect::handshake_h1(transport, slot).await?;
    Ok(Pooled {
        conn: Conn::H1(sender),
        reused: false,
    })
}

/// Opens the HTTP/2 connection to `origin` and hands it to the requests
/// that waited for it.
async fn open_h2(
    shared: &Rc<Shared>,
    origin: &Origin,
    mut connecting: Connecting,
) -> Result<H2Sender, Error> {
    let opened = match connect::connect(&shared.config, origin).await {
        Ok(transport) => connect::handshake_h2(transport).await,
        Err(err) => Err(err),
    };
    connecting.armed = false;
    let waiters = {
        let mut pool = shared.pool.borrow_mut();
        let host = pool.hosts.entry(origin.clone()).or_default();
        let old = match &opened {
            Ok(sender) => mem::replace(
                &mut host.h2,
                H2::Ready {
                    sender: sender.clone(),
                    used: Instant::now(),
                },
            ),
            Err(_) => mem::take(&mut host.h2),
        };
        if opened.is_ok() {
            ensure_reaper(&mut pool, shared);
        }
        match old {
            H2::Connecting(waiters) => waiters,
            _ => Vec::new(),
        }
    };
    for waiter in waiters {
        let wake = match &opened {
            Ok(sender) => H2Wake::Ready(sender.clone()),
            Err(err) => H2Wake::Failed(format!(
                "the HTTP/2 connection this request waited for failed: {err}"
            )),
        };
        let _ = waiter.send(wake);
    }
    opened
}

/// Makes `sender` (HTTP/2 chosen by ALPN) the origin's shared connection,
/// unless it has a live one already.
fn install_h2(shared: &Rc<Shared>, origin: &Origin, sender: &H2Sender) {
    let mut pool = shared.pool.borrow_mut();
    let host = pool.hosts.entry(origin.clone()).or_default();
    if matches!(&host.h2, H2::Ready { sender, .. } if !sender.is_closed())
        || matches!(host.h2, H2::Connecting(_))
    {
        return;
    }
    let old = mem::replace(
        &mut host.h2,
        H2::Ready {
            sender: sender.clone(),
            used: Instant::now(),
        },
    );
    ensure_reaper(&mut pool, shared);
    drop(pool);
    drop(old);
}

/// An HTTP/1.1 connection whose response has ended comes back: to the
/// first waiting request, else to the idle list (unless it is full).
pub(crate) fn put_back(shared: &Weak<Shared>, origin: &Origin, sender: H1Sender) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    if sender.is_closed() {
        return;
    }
    let waiter = {
        let mut pool = shared.pool.borrow_mut();
        let Some(host) = pool.hosts.get_mut(origin) else {
            return;
        };
        let waiter = pop_live(&mut host.waiters);
        if waiter.is_none() {
            if host.idle.len() >= shared.config.pool_max_idle_per_host {
                return;
            }
            host.idle.push(Idle {
                sender,
                since: Instant::now(),
            });
            ensure_reaper(&mut pool, &shared);
            return;
        }
        waiter
    };
    if let Some(waiter) = waiter {
        let _ = waiter.send(Handoff::Conn(sender));
    }
}

/// Starts the task that closes idle connections, if it is not running.
fn ensure_reaper(pool: &mut Pool, shared: &Rc<Shared>) {
    let Some(limit) = shared.config.pool_idle_timeout else {
        return;
    };
    if pool
        .reaper
        .as_ref()
        .is_some_and(|reaper| !reaper.is_finished())
    {
        return;
    }
    pool.reaper = Some(percore_runtime::spawn(reap(Rc::downgrade(shared), limit)));
}

/// Closes idle connections as their time runs out; ends when none is left.
async fn reap(shared: Weak<Shared>, limit: Duration) {
    loop {
        let Some(next) = reap_once(&shared, limit) else {
            return;
        };
        sleep_until(next).await;
    }
}

/// Drops what has been idle for `limit`; the time the next one will have.
fn reap_once(shared: &Weak<Shared>, limit: Duration) -> Option<Instant> {
    let shared = shared.upgrade()?;
    let now = Instant::now();
    let mut stale_h1: Vec<Idle> = Vec::new();
    let mut stale_h2: Vec<H2> = Vec::new();
    let mut pool = shared.pool.borrow_mut();
    let mut oldest: Option<Instant> = None;
    for host in pool.hosts.values_mut() {
        let (old, fresh): (Vec<Idle>, Vec<Idle>) = mem::take(&mut host.idle)
            .into_iter()
            .partition(|idle| expired(idle.since, now, Some(limit)) || idle.sender.is_closed());
        stale_h1.extend(old);
        host.idle = fresh;
        for idle in &host.idle {
            oldest = Some(oldest.map_or(idle.since, |o| o.min(idle.since)));
        }
        if let H2::Ready { sender, used } = &host.h2 {
            if sender.is_closed() || expired(*used, now, Some(limit)) {
                stale_h2.push(mem::take(&mut host.h2));
            } else {
                oldest = Some(oldest.map_or(*used, |o| o.min(*used)));
            }
        }
    }
    pool.hosts.retain(|_, host| !host.is_unused());
    drop(pool);
    drop(stale_h1);
    drop(stale_h2);
    oldest.and_then(|since| since.checked_add(limit))
}
