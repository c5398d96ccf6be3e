//! Hand-written argument parsing: the CLI is one subcommand and two flags, which
//! does not justify a parser dependency.

use std::fmt;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print the usage text and exit 0.
    Help,
    /// Run the demo workload.
    Demo(DemoOptions),
}

/// Options of `percore-bench demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    /// Runs per figure; the figure printed is their median.
    pub runs: usize,
    /// Divides every workload size by 10 (a fast smoke run, e.g. in CI).
    pub quick: bool,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            runs: 5,
            quick: false,
        }
    }
}

/// The most runs `--runs` accepts: keeps the demo's run time bounded.
pub const MAX_RUNS: usize = 25;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
percore-bench: figures for percore's timer/task paths

USAGE:
    percore-bench demo [--runs N] [--quick]
    percore-bench --help

COMMANDS:
    demo        spawn+join 1,000,000 tasks; 100,000 concurrent sleeps;
                100,000 io_uring NOPs with 64 in flight; a 2-core run_on_all
                smoke. Prints the median of several runs of each.

OPTIONS:
    --runs N    runs per figure, 1..=25 (default 5); the median is printed
    --quick     every workload 10x smaller (a smoke run)
    -h, --help  print this text

The comparison with tokio and monoio is `cargo bench -p percore-bench`.";

/// A command line that could not be understood; printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (try `percore-bench --help`)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// An unknown command or flag, a missing or malformed value.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = String>,
{
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err(UsageError("missing command: expected `demo`".into()));
    };
    match command.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "demo" => {}
        other => {
            return Err(UsageError(format!(
                "unknown command `{other}`: expected `demo`"
            )))
        }
    }
    let mut options = DemoOptions::default();
    while let Some(arg) = args.next() {
        // Accept both `--runs N` and `--runs=N`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" if inline.is_none() => options.quick = true,
            "--runs" => {
                let Some(value) = inline.or_else(|| args.next()) else {
                    return Err(UsageError("`--runs` needs a value".into()));
                };
                options.runs = match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_RUNS).contains(&n) => n,
                    _ => {
                        return Err(UsageError(format!(
                            "`--runs {value}`: expected a whole number from 1 to {MAX_RUNS}"
                        )))
                    }
                };
            }
            _ => return Err(UsageError(format!("unknown argument `{arg}` for `demo`"))),
        }
    }
    Ok(Command::Demo(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, UsageError> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn demo_defaults() {
        assert_eq!(parse_str("demo"), Ok(Command::Demo(DemoOptions::default())));
    }

    #[test]
    fn demo_flags() {
        let expected = Command::Demo(DemoOptions {
            runs: 3,
            quick: true,
        });
        assert_eq!(parse_str("demo --runs 3 --quick"), Ok(expected.clone()));
        assert_eq!(parse_str("demo --quick --runs=3"), Ok(expected));
    }

    #[test]
    fn help() {
        assert_eq!(parse_str("--help"), Ok(Command::Help));
        assert_eq!(parse_str("-h"), Ok(Command::Help));
        assert_eq!(parse_str("demo --help"), Ok(Command::Help));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "bench",
            "demo --runs",
            "demo --runs 0",
            "demo --runs x",
            "demo --runs 26",
            "demo -x",
            "demo --quick=1",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
