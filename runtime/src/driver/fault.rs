//! Fault injection (the `faults` feature): failures a correct caller must
//! survive, made to happen on purpose, seeded, over either backend.
//!
//! The layer sits in [`Io`](super::Io) and sees every op it starts and every
//! completion it reaps:
//!
//! - **errors** (`eintr=P`, `eio=P@read+write`, …): the op fails with that
//!   errno *instead of* running, so nothing it would have done happens (no
//!   byte consumed, no fd made) and its completion arrives at the next turn.
//!   Only single-shot ops, and never `close` (a failed close still frees its
//!   fd; one that never ran would leak it);
//! - **short I/O** (`short=P`): a read, write, recv or send on a stream — a
//!   regular file (not `O_DIRECT`), a pipe or a stream socket — asks the
//!   kernel for fewer bytes, so the data stays real and the rest stays where
//!   it was;
//! - **delays** (`delay=P/N`): a completion is held back for up to `N` turns
//!   (default 3), each op's completions still in order;
//! - on io_uring, **failed submits** (`submit=P`): `io_uring_enter` fails with
//!   `EINTR`, `EAGAIN` or `EBUSY` before it runs, the SQEs left queued; and
//!   **tiny rings** (`sq=N`, `cq=N`) for the SQ-full and CQ-overflow paths.
//!
//! A spec is a comma-separated list of those items plus `seed=N` (default 1;
//! each core draws from its own stream of it), `none` (no faults: a test
//! about exact op counts opts out of `PERCORE_FAULTS` with it)
//! and the presets `light` —
//! `short=0.25,eintr=0.05,delay=0.1`, the mix every correct caller survives —
//! and `heavy`, which adds errors that reach callers. `P` is a probability
//! from 0 to 1; `@kind+kind` limits an item to ops of those kinds (`read`,
//! `write`, `recv`, `send`, `accept`, `connect`, `open`, `sync`, `other`).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use io_uring::{opcode as op, squeue};

use super::sqe::RawSqe;

/// `IOSQE_FIXED_FILE` and `IOSQE_BUFFER_SELECT`.
const FIXED_FILE: u8 = 1 << 0;
const BUFFER_SELECT: u8 = 1 << 5;

/// Op kinds an item can be limited to, as bits.
const KINDS: [(&str, u32); 8] = [
    ("read", 1 << 0),
    ("write", 1 << 1),
    ("recv", 1 << 2),
    ("send", 1 << 3),
    ("accept", 1 << 4),
    ("connect", 1 << 5),
    ("open", 1 << 6),
    ("sync", 1 << 7),
];
const OTHER: u32 = 1 << 8;
const ALL: u32 = u32::MAX;

/// The errnos an item may name.
const ERRNOS: [(&str, i32); 7] = [
    ("eintr", libc::EINTR),
    ("eagain", libc::EAGAIN),
    ("ecanceled", libc::ECANCELED),
    ("econnreset", libc::ECONNRESET),
    ("eio", libc::EIO),
    ("enomem", libc::ENOMEM),
    ("enobufs", libc::ENOBUFS),
];

const LIGHT: &str = "short=0.25,eintr=0.05,delay=0.1";
const HEAVY: &str = "short=0.25,eintr=0.05,delay=0.1/8,eagain=0.02,ecanceled=0.02,\
                     econnreset=0.02@recv+send,eio=0.02@read+write+sync,enomem=0.01,submit=0.05";

/// How often, and for which kinds of op.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Rule {
    chance: f64,
    kinds: u32,
}

/// A parsed fault spec (see the module docs for the grammar).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Spec {
    seed: u64,
    short: Rule,
    delay: Rule,
    max_delay: u32,
    errors: Vec<(i32, Rule)>,
    submit: f64,
    /// Ring sizes to use instead of the builder's.
    pub(crate) sq: Option<u32>,
    pub(crate) cq: Option<u32>,
}

impl Spec {
    /// Parses `text`; the error names the item that is wrong.
    pub(crate) fn parse(text: &str) -> io::Result<Spec> {
        let mut spec = Spec {
            seed: 1,
            max_delay: 3,
            ..Spec::default()
        };
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            spec.item(item).map_err(|why| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "fault spec {text:?}: {item:?} {why}; see percore_runtime::Builder::faults"
                    ),
                )
            })?;
        }
        Ok(spec)
    }

    /// Whether it injects anything at all (`none` does not).
    pub(crate) fn is_active(&self) -> bool {
        self.short.chance > 0.0
            || self.delay.chance > 0.0
            || self.submit > 0.0
            || self.errors.iter().any(|(_, rule)| rule.chance > 0.0)
    }

    /// `PERCORE_FAULTS`, if set.
    pub(crate) fn from_env() -> io::Result<Option<Arc<Spec>>> {
        match std::env::var("PERCORE_FAULTS") {
            Ok(text) => Spec::parse(&text).map(|spec| Some(Arc::new(spec))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(err) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("PERCORE_FAULTS: {err}"),
            )),
        }
    }

    fn item(&mut self, item: &str) -> Result<(), String> {
        match item {
            "none" => return Ok(()),
            "light" => return self.preset(LIGHT),
            "heavy" => return self.preset(HEAVY),
            _ => {}
        }
        let (key, value) = item.split_once('=').ok_or("is not key=value")?;
        let number = |text: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("needs a whole number, not {text:?}"))
        };
        match key {
            "seed" => self.seed = number(value)?,
            "sq" => self.sq = Some(number(value)?.clamp(1, 1 << 15) as u32),
            "cq" => self.cq = Some(number(value)?.clamp(2, 1 << 16) as u32),
            "submit" => self.submit = chance(value)?,
            "short" => self.short = rule(value)?,
            "delay" => {
                let (value, turns) = match value.split_once('/') {
                    Some((value, turns)) => (value, number(turns)?.max(1) as u32),
                    None => (value, self.max_delay),
                };
                self.delay = rule(value)?;
                self.max_delay = turns;
            }
            name => {
                let (_, errno) = ERRNOS
                    .iter()
                    .find(|(known, _)| *known == name)
                    .ok_or("is not a fault: use seed, short, delay, submit, sq, cq or an errno (eintr, eagain, ecanceled, econnreset, eio, enomem, enobufs)")?;
                self.errors.retain(|(known, _)| known != errno);
                self.errors.push((*errno, rule(value)?));
            }
        }
        Ok(())
    }

    fn preset(&mut self, items: &str) -> Result<(), String> {
        items.split(',').try_for_each(|item| self.item(item))
    }
}

/// `P` or `P@kind+kind`.
fn rule(text: &str) -> Result<Rule, String> {
    let (value, kinds) = match text.split_once('@') {
        None => (text, ALL),
        Some((value, names)) => {
            let mut kinds = 0;
            for name in names.split('+') {
                kinds |= match KINDS.iter().find(|(known, _)| *known == name) {
                    Some((_, bit)) => *bit,
                    None if name == "other" => OTHER,
                    None => return Err(format!("names no op kind {name:?} (read, write, recv, send, accept, connect, open, sync, other)")),
                };
            }
            (value, kinds)
        }
    };
    Ok(Rule {
        chance: chance(value)?,
        kinds,
    })
}

fn chance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("needs a probability from 0 to 1, not {text:?}")),
    }
}

/// The kind bit of `opcode`.
fn kind(opcode: u8) -> u32 {
    let name = match opcode {
        op::Read::CODE | op::Readv::CODE | op::ReadFixed::CODE => "read",
        op::Write::CODE | op::Writev::CODE | op::WriteFixed::CODE => "write",
        op::Recv::CODE | op::RecvMsg::CODE => "recv",
        op::Send::CODE | op::SendMsg::CODE | op::SendZc::CODE => "send",
        op::Accept::CODE => "accept",
        op::Connect::CODE => "connect",
        op::OpenAt::CODE | op::OpenAt2::CODE => "open",
        op::Fsync::CODE | op::Fallocate::CODE | op::SyncFileRange::CODE => "sync",
        _ => return OTHER,
    };
    KINDS
        .iter()
        .find(|(known, _)| *known == name)
        .map_or(OTHER, |(_, bit)| *bit)
}

/// One core's faults: its random stream and the completions it holds.
#[derive(Debug)]
pub(crate) struct Faults {
    spec: Arc<Spec>,
    rng: u64,
    /// Turns so far; held completions are due at a turn number.
    turn: u64,
    /// Completions of ops failed instead of run, and completions held back:
    /// (due at turn, user_data, res, flags), in the order they arrived.
    held: VecDeque<(u64, u64, i32, u32)>,
}

impl Faults {
    /// Core `core`'s faults, drawn from its own stream of the spec's seed.
    pub(crate) fn new(spec: Arc<Spec>, core: usize) -> Faults {
        let rng = spec.seed ^ (core as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Faults {
            spec,
            rng,
            turn: 0,
            held: VecDeque::new(),
        }
    }

    /// A uniform draw in `0..1` (splitmix64).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hits(&mut self, rule: Rule, kind: u32) -> bool {
        rule.chance > 0.0 && rule.kinds & kind != 0 && self.draw() < rule.chance
    }

    /// The errno to fail a single-shot op with instead of running it, if any.
    pub(crate) fn error(&mut self, sqe: &squeue::Entry) -> Option<i32> {
        let raw = RawSqe::of(sqe);
        if raw.opcode == op::Close::CODE {
            return None;
        }
        let kind = kind(raw.opcode);
        let spec = Arc::clone(&self.spec);
        spec.errors
            .iter()
            .find(|(_, rule)| self.hits(*rule, kind))
            .map(|(errno, _)| *errno)
    }

    /// Asks for fewer bytes if the op is a plain read or write on a stream
    /// and the draw says so; true if it did.
    pub(crate) fn shorten(&mut self, sqe: &mut squeue::Entry) -> bool {
        let raw = RawSqe::of(sqe);
        let flat = matches!(
            raw.opcode,
            op::Read::CODE
                | op::Write::CODE
                | op::Recv::CODE
                | op::Send::CODE
                | op::ReadFixed::CODE
                | op::WriteFixed::CODE
        );
        if !flat || raw.len < 2 || raw.flags & (FIXED_FILE | BUFFER_SELECT) != 0 || raw.ioprio != 0
        {
            return false;
        }
        if !self.hits(self.spec.short, kind(raw.opcode)) || !is_stream(raw.fd) {
            return false;
        }
        let len = 1 + (self.draw() * f64::from(raw.len - 1)) as u32;
        super::sqe::set_len(sqe, len.min(raw.len - 1));
        true
    }

    /// Fails the op `user_data` with `errno` at the next turn.
    pub(crate) fn fail(&mut self, user_data: u64, errno: i32) {
        self.held.push_back((self.turn + 1, user_data, -errno, 0));
    }

    /// Whether to hold this completion back; if so it is kept, behind any
    /// completion of the same op held already.
    pub(crate) fn hold(&mut self, user_data: u64, res: i32, flags: u32) -> bool {
        let behind = self
            .held
            .iter()
            .rev()
            .find(|held| held.1 == user_data)
            .map(|held| held.0);
        let due = match behind {
            Some(due) => due,
            None if self.hits(self.spec.delay, ALL) => {
                self.turn + 1 + (self.draw() * f64::from(self.spec.max_delay)) as u64
            }
            None => return false,
        };
        self.held.push_back((due, user_data, res, flags));
        true
    }

    /// Whether `io_uring_enter` is to fail now, and with which errno.
    pub(crate) fn fail_enter(&mut self) -> Option<i32> {
        let spec = self.spec.submit;
        (spec > 0.0 && self.draw() < spec)
            .then(|| [libc::EINTR, libc::EAGAIN, libc::EBUSY][(self.draw() * 3.0) as usize % 3])
    }

    /// Whether completions are held (so the core must not park).
    pub(crate) fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// Counts a turn and hands over the completions now due, in order.
    pub(crate) fn due(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        self.turn += 1;
        let turn = self.turn;
        let mut keep = VecDeque::with_capacity(self.held.len());
        for held in self.held.drain(..) {
            // A later completion of an op whose earlier one stays, stays too.
            let blocked = keep
                .iter()
                .any(|kept: &(u64, u64, i32, u32)| kept.1 == held.1);
            if held.0 <= turn && !blocked {
                out.push((held.1, held.2, held.3));
            } else {
                keep.push_back(held);
            }
        }
        self.held = keep;
    }

    /// Everything held, in order (shutdown).
    pub(crate) fn release_all(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        out.extend(self.held.drain(..).map(|held| (held.1, held.2, held.3)));
    }
}

/// Whether `fd` is a regular file (not `O_DIRECT`), a pipe or a stream
/// socket: where a short read or write is something callers must handle, and
/// asking for fewer bytes loses nothing.
fn is_stream(fd: i32) -> bool {
    // SAFETY: `stat` is plain data the kernel fills; an fd that is not open
    // gives an error, nothing else.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a live, writable `struct stat`.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return false;
    }
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFREG => {
            // SAFETY: F_GETFL takes no argument and touches no memory.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            flags >= 0 && flags & libc::O_DIRECT == 0
        }
        libc::S_IFSOCK => {
            let mut kind: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: the kernel writes at most `len` bytes into `kind`.
            let ok = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&raw mut kind).cast(),
                    &mut len,
                )
            } == 0;
            ok && kind == libc::SOCK_STREAM
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_items_parse_and_bad_items_are_named() {
        let light = Spec::parse("light").unwrap();
        assert_eq!(light.short.chance, 0.25);
        assert_eq!(
            light.errors,
            [(
                libc::EINTR,
                Rule {
                    chance: 0.05,
                    kinds: ALL
                }
            )]
        );
        let spec = Spec::parse("seed=7, eio=0.5@read+sync, delay=0.2/9, sq=4, cq=8").unwrap();
        assert_eq!(
            (spec.seed, spec.max_delay, spec.sq, spec.cq),
            (7, 9, Some(4), Some(8))
        );
        assert_eq!(spec.errors[0].1.kinds, KINDS[0].1 | KINDS[7].1);
        for (bad, named) in [
            ("short=2", "short=2"),
            ("eio=0.1@disk", "disk"),
            ("boom=1", "boom"),
            ("seed", "seed"),
        ] {
            let err = Spec::parse(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn held_completions_of_one_op_stay_in_order() {
        let spec = Arc::new(Spec::parse("delay=1/5").unwrap());
        let mut faults = Faults::new(spec, 0);
        for res in 0..20 {
            assert!(faults.hold(7, res, 0));
            assert!(faults.hold(8, 100 + res, 0));
        }
        let mut out = Vec::new();
        while faults.holds() {
            faults.due(&mut out);
        }
        let of = |user_data| {
            out.iter()
                .filter(|c| c.0 == user_data)
                .map(|c| c.1)
                .collect::<Vec<_>>()
        };
        assert_eq!(of(7), (0..20).collect::<Vec<_>>());
        assert_eq!(of(8), (100..120).collect::<Vec<_>>());
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let draws = |seed: u64| {
            let mut faults = Faults::new(
                Arc::new(Spec::parse(&format!("seed={seed},eio=0.5")).unwrap()),
                3,
            );
            let sqe = op::Nop::new().build();
            (0..64)
                .map(|_| faults.error(&sqe).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(5), draws(5));
        assert_ne!(draws(5), draws(6));
        let hits = draws(5).iter().filter(|hit| **hit).count();
        assert!((8..56).contains(&hits), "{hits} of 64 at p = 0.5");
    }
}
