//! The newer io_uring features a ring may use: which the kernel has (probed
//! when the ring is set up), and which the user allows ([`Builder::uring_features`]
//! or `PERCORE_URING_FEATURES`). A feature the kernel lacks is simply off: the
//! code path of older kernels runs instead, with no error.
//!
//! [`Builder::uring_features`]: crate::Builder::uring_features

use std::fmt;
use std::io;
use std::ops::{BitAnd, BitOr, Not};
use std::str::FromStr;

use io_uring::IoUring;

/// A set of newer io_uring features that percore uses where the kernel has them.
///
/// Each one is probed when a core sets up its ring; a feature the kernel lacks
/// is off, and that core runs the path of older kernels instead. The set a
/// core may use is [`Features::DEFAULT`] unless
/// [`Builder::uring_features`](crate::Builder::uring_features) says otherwise;
/// a builder left alone takes the `PERCORE_URING_FEATURES` environment
/// variable (see [`FromStr`](#impl-FromStr-for-Features)) instead, so a
/// deployment or a benchmark can turn one off without a rebuild.
/// [`Stats::uring_features`](crate::Stats::uring_features) says which a core
/// runs with (always none on the epoll backend).
///
/// # Examples
///
/// ```
/// use percore_runtime::{Builder, Features};
///
/// // The path of kernels before 6.10, on any kernel.
/// let on = Builder::new()
///     .uring_features(Features::NONE)
///     .block_on(async { percore_runtime::stats().uring_features })
///     .unwrap();
/// assert_eq!(on, Features::NONE);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Features(u32);

/// Each feature and its name in `PERCORE_URING_FEATURES`.
const TABLE: &[(Features, &str)] = &[(Features::RECV_BUNDLE, "recv_bundle")];

impl Features {
    /// No feature: every core runs the path of Linux 6.1.
    pub const NONE: Features = Features(0);

    /// Receive bundles (`IORING_RECVSEND_BUNDLE` on a multishot receive,
    /// `IORING_FEAT_RECVSEND_BUNDLE`, Linux 6.10): when more than one ring
    /// buffer's worth of bytes waits on a socket, one completion hands over
    /// several buffers of a [`BufRing`](crate::buf_ring::BufRing) instead of
    /// one completion per buffer.
    pub const RECV_BUNDLE: Features = Features(1 << 0);

    /// Every feature percore knows.
    pub const ALL: Features = Features(Self::RECV_BUNDLE.0);

    /// What a core uses unless told otherwise: the features that measured
    /// fewer completions or enters per request at no cost in CPU per
    /// request (docs/uring-features.md has the figures).
    pub const DEFAULT: Features = Features(Self::RECV_BUNDLE.0);

    /// Whether every feature of `other` is in `self`.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits, for [`Stats`](crate::Stats)' published words.
    pub(crate) const fn bits(self) -> u32 {
        self.0
    }

    /// The set `bits` names (unknown bits dropped).
    pub(crate) const fn from_bits(bits: u32) -> Features {
        Features(bits & Self::ALL.0)
    }

    /// The names of the features in the set, as `PERCORE_URING_FEATURES` takes them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        TABLE
            .iter()
            .filter(move |(feature, _)| self.contains(*feature))
            .map(|(_, name)| *name)
    }
}

impl BitOr for Features {
    type Output = Features;
    fn bitor(self, rhs: Features) -> Features {
        Features(self.0 | rhs.0)
    }
}

impl BitAnd for Features {
    type Output = Features;
    fn bitand(self, rhs: Features) -> Features {
        Features(self.0 & rhs.0)
    }
}

impl Not for Features {
    type Output = Features;
    fn not(self) -> Features {
        Features(!self.0 & Self::ALL.0)
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl FromStr for Features {
    type Err = io::Error;

    /// Parses `PERCORE_URING_FEATURES`: `default`, `none`, `all`, a
    /// comma-separated list of names (`recv_bundle`: exactly these), or
    /// changes to the default (`-recv_bundle`, `+recv_bundle`).
    fn from_str(s: &str) -> io::Result<Features> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "" | "default" => return Ok(Features::DEFAULT),
            "none" => return Ok(Features::NONE),
            "all" => return Ok(Features::ALL),
            _ => {}
        }
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        let relative = items.iter().all(|i| i.starts_with(['+', '-']));
        let mut set = if relative {
            Features::DEFAULT
        } else {
            Features::NONE
        };
        for item in items {
            let (sign, name) = match item.strip_prefix('-') {
                Some(name) => ('-', name),
                None => ('+', item.trim_start_matches('+')),
            };
            let Some((feature, _)) = TABLE.iter().find(|(_, known)| *known == name) else {
                let known: Vec<&str> = TABLE.iter().map(|(_, name)| *name).collect();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "PERCORE_URING_FEATURES: {name:?} is not a feature: use default, none, \
                         all, or a list of {} (each may start with - or +)",
                        known.join(", ")
                    ),
                ));
            };
            set = match sign {
                '-' => set & !*feature,
                _ => set | *feature,
            };
        }
        Ok(set)
    }
}

/// What the builder said (`None`: the environment decides, else the default).
pub(crate) fn wanted(choice: Option<Features>) -> io::Result<Features> {
    if let Some(choice) = choice {
        return Ok(choice);
    }
    match std::env::var("PERCORE_URING_FEATURES") {
        Ok(value) => value.parse(),
        Err(_) => Ok(Features::DEFAULT),
    }
}

/// The features of `wanted` that `ring`'s kernel has.
pub(crate) fn probe(ring: &IoUring, wanted: Features) -> Features {
    let params = ring.params();
    let mut have = Features::NONE;
    if params.is_feature_recvsend_bundle() {
        have = have | Features::RECV_BUNDLE;
    }
    have & wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_parses_lists_and_changes() {
        assert_eq!("none".parse::<Features>().unwrap(), Features::NONE);
        assert_eq!("ALL".parse::<Features>().unwrap(), Features::ALL);
        assert_eq!("".parse::<Features>().unwrap(), Features::DEFAULT);
        assert_eq!(
            "recv_bundle".parse::<Features>().unwrap(),
            Features::RECV_BUNDLE
        );
        assert_eq!(
            "-recv_bundle".parse::<Features>().unwrap(),
            Features::DEFAULT & !Features::RECV_BUNDLE
        );
        assert_eq!(
            " recv_bundle, ".parse::<Features>().unwrap(),
            Features::RECV_BUNDLE
        );
        let err = "bundles".parse::<Features>().unwrap_err();
        assert!(err.to_string().contains("recv_bundle"), "{err}");
    }

    #[test]
    fn names_and_display_agree() {
        let set = Features::RECV_BUNDLE;
        assert_eq!(set.to_string(), "recv_bundle");
        assert_eq!(set.to_string().parse::<Features>().unwrap(), set);
        assert_eq!(Features::NONE.to_string(), "none");
        assert_eq!(format!("{:?}", Features::RECV_BUNDLE), "{\"recv_bundle\"}");
    }

    /// What the kernel has is masked by what is wanted; on a kernel that
    /// reports a feature's flag the probe finds it.
    #[test]
    fn the_probe_follows_the_kernel_and_the_mask() {
        let ring = IoUring::new(8).unwrap();
        let all = probe(&ring, Features::ALL);
        assert_eq!(probe(&ring, Features::NONE), Features::NONE);
        assert_eq!(
            all.contains(Features::RECV_BUNDLE),
            ring.params().is_feature_recvsend_bundle()
        );
        assert_eq!(
            probe(&ring, !Features::RECV_BUNDLE),
            all & !Features::RECV_BUNDLE
        );
    }
}
