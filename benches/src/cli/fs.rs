//! `percore-bench fs randread|randwrite|read|write [OPTIONS]`: the options of
//! the fs tool, parsed with the same `Args` as the other commands.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{no_value, usage, Args, Command, UsageError, MAX_DURATION_SECS, MAX_RUNS};

/// The access pattern of a job, named as fio names it (`--rw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rw {
    /// Random reads, `bs`-aligned, anywhere in the file.
    RandRead,
    /// Random writes, as `RandRead`.
    RandWrite,
    /// Sequential reads, wrapping round at the end of the file.
    Read,
    /// Sequential writes, as `Read`.
    Write,
}

impl Rw {
    /// The word on the command line, and fio's `--rw` value.
    pub fn name(self) -> &'static str {
        match self {
            Rw::RandRead => "randread",
            Rw::RandWrite => "randwrite",
            Rw::Read => "read",
            Rw::Write => "write",
        }
    }

    /// Whether the job writes (else it reads).
    pub fn writes(self) -> bool {
        matches!(self, Rw::RandWrite | Rw::Write)
    }

    /// Whether offsets are random (else sequential).
    pub fn random(self) -> bool {
        matches!(self, Rw::RandRead | Rw::RandWrite)
    }
}

impl fmt::Display for Rw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of `percore-bench fs`.
#[derive(Debug, Clone, PartialEq)]
pub struct FsOptions {
    /// The access pattern.
    pub rw: Rw,
    /// Bytes per read or write.
    pub bs: usize,
    /// Reads or writes in flight per core (one task each).
    pub iodepth: usize,
    /// `O_DIRECT` through `DmaFile` (else buffered, through `File`).
    pub direct: bool,
    /// Bytes of the file the job covers; it is laid out first if shorter.
    pub size: u64,
    /// Length of one run.
    pub duration: Duration,
    /// The file; `None`: a file in the temp dir, removed at the end.
    pub file: Option<PathBuf>,
    /// percore cores, each with `iodepth` in flight on its own share of the file.
    pub cores: usize,
    /// Alternate runs with fio's on the same job.
    pub compare: bool,
    /// Rounds of `--compare`.
    pub rounds: usize,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Write latency and throughput plots to this SVG file.
    pub plot: Option<PathBuf>,
}

impl FsOptions {
    /// The defaults, for `rw`.
    pub fn new(rw: Rw) -> FsOptions {
        FsOptions {
            rw,
            bs: 4096,
            iodepth: 1,
            direct: false,
            size: 256 << 20,
            duration: Duration::from_secs(5),
            file: None,
            cores: 1,
            compare: false,
            rounds: 3,
            json: false,
            plot: None,
        }
    }
}

/// The largest `--bs`.
pub const MAX_BS: u64 = 64 << 20;
/// The largest `--size`.
pub const MAX_SIZE: u64 = 1 << 40;
/// The deepest `--iodepth`.
pub const MAX_IODEPTH: usize = 4096;

pub(super) fn parse(mut args: Args) -> Result<Command, UsageError> {
    let mut o = FsOptions::new(parse_rw(args.next_word())?);
    while let Some((flag, inline)) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--bs" => o.bs = bytes(&flag, args.value(&flag, inline)?, MAX_BS)? as usize,
            "--size" => o.size = bytes(&flag, args.value(&flag, inline)?, MAX_SIZE)?,
            "--iodepth" => o.iodepth = args.number(&flag, inline, 1, MAX_IODEPTH)?,
            "--duration" | "-d" => {
                let secs: f64 = args.number(&flag, inline, 0.01, MAX_DURATION_SECS as f64)?;
                o.duration = Duration::from_secs_f64(secs);
            }
            "--file" => o.file = Some(PathBuf::from(args.value(&flag, inline)?)),
            "--cores" => o.cores = args.number(&flag, inline, 1, 1024)?,
            "--rounds" => o.rounds = args.number(&flag, inline, 1, MAX_RUNS)?,
            "--direct" => {
                no_value(&flag, inline)?;
                o.direct = true;
            }
            "--compare" => {
                no_value(&flag, inline)?;
                o.compare = true;
            }
            "--json" => {
                no_value(&flag, inline)?;
                o.json = true;
            }
            "--plot" => o.plot = Some(PathBuf::from(args.value(&flag, inline)?)),
            _ => return Err(usage(format!("unknown argument `{flag}` for `fs`"))),
        }
    }
    // Each core works on its own share of the file, of at least one block.
    if o.size / (o.cores as u64) < o.bs as u64 {
        return Err(usage(format!(
            "`--size {}` is less than `--bs {}` per core ({} core{})",
            o.size,
            o.bs,
            o.cores,
            if o.cores == 1 { "" } else { "s" }
        )));
    }
    Ok(Command::Fs(o))
}

fn parse_rw(word: Option<String>) -> Result<Rw, UsageError> {
    let expected = "expected `randread`, `randwrite`, `read` or `write`";
    match word.as_deref() {
        Some("randread") => Ok(Rw::RandRead),
        Some("randwrite") => Ok(Rw::RandWrite),
        Some("read") => Ok(Rw::Read),
        Some("write") => Ok(Rw::Write),
        Some(other) => Err(usage(format!("`fs {other}`: {expected}"))),
        None => Err(usage(format!("`fs` needs a job: {expected}"))),
    }
}

/// A byte count: a number with an optional binary suffix (`4k`, `64m`, `1g`,
/// `4KiB`), from 1 to `max`.
fn bytes(flag: &str, value: String, max: u64) -> Result<u64, UsageError> {
    let lower = value.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let unit: Option<u64> = match suffix.trim_end_matches("ib").trim_end_matches('b') {
        "" => Some(1),
        "k" => Some(1 << 10),
        "m" => Some(1 << 20),
        "g" => Some(1 << 30),
        "t" => Some(1 << 40),
        _ => None,
    };
    match (digits.parse::<u64>().ok(), unit) {
        (Some(n), Some(unit)) => match n.checked_mul(unit) {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(usage(format!(
                "`{flag} {value}`: expected 1 byte to {} MiB",
                max >> 20
            ))),
        },
        _ => Err(usage(format!(
            "`{flag} {value}`: expected a byte count such as 4096, 4k, 64m or 1g"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    fn parse_str(line: &str) -> Result<Command, UsageError> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(
            parse_str("fs randread"),
            Ok(Command::Fs(FsOptions::new(Rw::RandRead)))
        );
        let Ok(Command::Fs(o)) = parse_str(
            "fs write --bs 64k --iodepth=8 --direct --size 1g --duration 0.5 --file /x --compare --rounds 2 --json --plot p.svg --cores 2",
        ) else {
            panic!("should parse");
        };
        assert_eq!(o.rw, Rw::Write);
        assert_eq!(o.bs, 64 << 10);
        assert_eq!(o.iodepth, 8);
        assert!(o.direct && o.compare && o.json);
        assert_eq!(o.size, 1 << 30);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.file, Some(PathBuf::from("/x")));
        assert_eq!((o.rounds, o.cores), (2, 2));
        assert_eq!(o.plot, Some(PathBuf::from("p.svg")));
    }

    #[test]
    fn byte_counts() {
        for (text, n) in [
            ("4096", 4096),
            ("4k", 4096),
            ("4K", 4096),
            ("4KiB", 4096),
            ("64m", 64 << 20),
            ("2G", 2 << 30),
        ] {
            assert_eq!(bytes("--size", text.into(), MAX_SIZE), Ok(n), "{text}");
        }
        for bad in ["0", "", "k", "4x", "-1", "1.5m", "2t"] {
            assert!(bytes("--bs", bad.into(), MAX_BS).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors() {
        for bad in [
            "fs",
            "fs scan",
            "fs randread --bs 0",
            "fs randread --bs",
            "fs randread --iodepth 0",
            "fs randread --size 0",
            "fs randread --size 4k --bs 8k",
            "fs randread --size 8k --cores 4",
            "fs randread --duration 0",
            "fs randread --direct=1",
            "fs randread --connections 4",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
