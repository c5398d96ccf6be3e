//! Hand-written argument parsing: a few subcommands with `--flag value` options,
//! which does not justify a parser dependency.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::outside::Client;
use crate::server::{Placement, Protocol};

mod fs;
pub use fs::{FsOptions, Rw};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Print the usage text and exit 0.
    Help,
    /// Run the demo workload.
    Demo(DemoOptions),
    /// Load a server (`percore-bench net echo|http`).
    Net(NetOptions),
    /// Run a percore server until stdin closes, or until `SIGTERM`/`SIGINT`
    /// (then it drains).
    Serve(ServeOptions),
    /// Run an fio-like file job (`percore-bench fs randread|randwrite|read|write`).
    Fs(FsOptions),
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

/// Options of `percore-bench net`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetOptions {
    /// Echo or HTTP.
    pub protocol: Protocol,
    /// The server to load; `None`: start a percore server (`serve`) as a child.
    pub target: Option<SocketAddr>,
    /// Open connections.
    pub connections: usize,
    /// Echo message size in bytes.
    pub size: usize,
    /// Length of one run.
    pub duration: Duration,
    /// Client cores.
    pub cores: usize,
    /// Open-loop rate in requests per second (all connections together).
    pub rate: Option<f64>,
    /// Cores of each server started here (without `--target`).
    pub server_cores: usize,
    /// Run against percore, tokio and monoio servers, alternating.
    pub compare: bool,
    /// Rounds of `--compare`.
    pub rounds: usize,
    /// Who sends the requests: one client, or several taking turns within
    /// each round (`--client a,b`).
    pub clients: Vec<Client>,
    /// The servers to start (`--servers`); `None`: percore, and with
    /// `--compare` tokio and monoio too.
    pub servers: Option<Vec<String>>,
    /// Keep one server process per server for all rounds instead of a fresh
    /// one for every run.
    pub reuse_servers: bool,
    /// Pin the servers from the first allowed CPU and the client after them.
    pub pin: bool,
    /// Load each server this long, unmeasured, before each measured run.
    pub warmup: Option<Duration>,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Write latency and throughput plots to this SVG file.
    pub plot: Option<PathBuf>,
}

impl NetOptions {
    /// The defaults, for `protocol`.
    pub fn new(protocol: Protocol) -> NetOptions {
        NetOptions {
            protocol,
            target: None,
            connections: 64,
            size: 128,
            duration: Duration::from_secs(5),
            cores: 1,
            rate: None,
            server_cores: 1,
            compare: false,
            rounds: 3,
            clients: vec![Client::Percore],
            servers: None,
            reuse_servers: false,
            pin: true,
            warmup: None,
            json: false,
            plot: None,
        }
    }
}

/// Options of `percore-bench serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Echo or HTTP.
    pub protocol: Protocol,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Cores, one listener each.
    pub cores: usize,
    /// Pin core `i` to the `first_cpu + i`-th allowed CPU.
    pub first_cpu: Option<usize>,
    /// Answer `stats` lines on stdin and exit when it closes (how a parent
    /// `percore-bench` drives a server child); otherwise run until `SIGTERM`
    /// or `SIGINT`, then drain.
    pub control: bool,
    /// After `SIGTERM` or `SIGINT`, how long connections may take to finish
    /// what they received before the server exits anyway.
    pub grace: Duration,
    /// Which HTTP server (`--server`): percore-bench's own or percore-http.
    pub server: HttpServer,
    /// HTTPS with a self-signed certificate (`--tls`, percore-http only).
    pub tls: bool,
    /// Hand a core's fresh connections to the core serving the fewest
    /// (`--balance`; `percore::net::balance`).
    pub balance: bool,
    /// As `balance`, and move connections between requests from a core
    /// that waits for its CPU to one with room (`--rehome`;
    /// `Balance::rehome`; on percore-http, plain HTTP/1.1 connections:
    /// `Builder::rehome`).
    pub rehome: bool,
}

impl ServeOptions {
    /// Where connections are served: `--rehome`, else `--balance`, else
    /// where the kernel put them.
    pub fn placement(&self) -> Placement {
        if self.rehome {
            Placement::Rehome
        } else if self.balance {
            Placement::Balance
        } else {
            Placement::Kernel
        }
    }
}

/// The HTTP server `serve http` runs (`--server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpServer {
    /// `bench` (default): percore-bench's hand-written HTTP/1.1 server
    /// ([`server`](crate::server)).
    #[default]
    Bench,
    /// `percore-http`: the hello-world service on `percore::http::server`,
    /// HTTP/1.1 and HTTP/2 ([`http_serve`](crate::http_serve)).
    PercoreHttp,
}

/// The most runs `--runs` accepts: keeps the demo's run time bounded.
pub const MAX_RUNS: usize = 25;
/// The most connections `net` opens.
pub const MAX_CONNECTIONS: usize = 100_000;
/// The longest `--duration`, in seconds.
pub const MAX_DURATION_SECS: u64 = 3600;
/// The largest echo message.
pub const MAX_SIZE: usize = 16 << 20;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
percore-bench: load tools and figures for percore

USAGE:
    percore-bench demo [--runs N] [--quick]
    percore-bench net echo|http [OPTIONS]
    percore-bench serve echo|http [--addr IP:PORT] [--cores N] [--first-cpu C] [--grace SECS] [--control] [--balance]
    percore-bench serve http --server percore-http [--tls] [same flags]
    percore-bench fs randread|randwrite|read|write [OPTIONS]
    percore-bench --help

COMMANDS:
    demo        about 17 s: spawn+join, sleeps, NOPs, a 2-core smoke, an echo
                and an HTTP load on loopback, 4 KiB random reads of a file in
                the temp dir; one summary table
    net         a load generator: latency (HDR histogram) and throughput
    serve       a percore echo or hello-world HTTP server (prints its address;
                with --control it answers `stats` on stdin, exits at its end;
                without, SIGTERM or Ctrl-C drains it: listeners close, what
                was received is answered, exit 0 within --grace SECS, default 5);
                `serve http --server percore-http` serves hello world on
                percore-http instead (HTTP/1.1 and h2c; --tls: HTTPS with
                h2 by ALPN, a self-signed certificate made at start);
                --balance hands fresh connections to the least-loaded core,
                on either server; --rehome also moves connections between
                requests from a core that waits for its CPU to one with
                room (on percore-http: plain HTTP/1.1 connections)
    fs          an fio-like file job on one percore core: IOPS, MiB/s, latency

NET OPTIONS:
    --target IP:PORT    the server to load (default: start `serve` as a child)
    --connections N     open connections, 1..=100000 (default 64)
    --size BYTES        echo message size (default 128)
    --duration SECS     seconds per run, e.g. 5 or 0.5 (default 5)
    --cores N           client cores (default 1)
    --rate R            open loop at R requests/s in total, latency counted
                        from when each request was due (as wrk2)
    --server-cores N    cores of the servers started here (default 1)
    --compare           run the same load against percore, tokio and monoio
                        servers (child processes), alternating, with ratios;
                        needs `cargo build --release -p percore-bench --example peer_server`
    --rounds N          rounds of --compare, 1..=25 (default 3)
    --client C[,C..]    who sends (several take turns within each round):
                        percore (default: this load generator),
                        percore-unbatched (the same, each request's write
                        submitted by an io_uring_enter of its own), tokio (a closed-loop tokio client, from the
                        peer_server example), wrk (HTTP; needs wrk on PATH),
                        outside (wrk for http, tokio for echo); outside
                        clients are closed loop, tokio runs one thread
    --servers A,B,..    the servers to start: percore, percore-epoll, tokio,
                        monoio, c-uring (a hand-written C server on liburing;
                        build it with benches/scripts/build_c_server.sh)
                        (default: percore; with --compare percore, tokio,
                        monoio)
    --reuse-servers     one server process per server for every round
                        (default: a fresh process for each run)
    --no-pin            pin neither servers nor client (default: servers from
                        the first CPU, the client after them)
    --warmup SECS       before each measured run, load the server this long
                        with the same client, unmeasured
    --json              print JSON (schema: benches/README.md) instead of a table
    --plot FILE.svg     write latency percentiles and throughput over time

FS OPTIONS:
    --bs BYTES          bytes per read or write, e.g. 4096, 4k, 1m (default 4k)
    --iodepth N         reads or writes in flight, 1..=4096 (default 1)
    --direct            O_DIRECT (DmaFile); --bs must be a multiple of the
                        file's direct I/O alignment
    --size BYTES        bytes of the file the job covers, laid out first if the
                        file is shorter (default 256m)
    --duration SECS     seconds per run (default 5)
    --file PATH         the file (default: one in the temp dir, removed after)
    --cores N           percore cores, each on its own share of the file (default 1)
    --compare           alternate with fio (io_uring engine) on the same job
    --rounds N          rounds of --compare, 1..=25 (default 3)
    --json              print JSON (schema: benches/README.md) instead of a table
    --plot FILE.svg     write latency percentiles and throughput over time

DEMO OPTIONS:
    --runs N    runs per figure, 1..=25 (default 5); the median is printed
    --quick     every workload smaller (a smoke run)

ENVIRONMENT:
    PERCORE_DRIVER=io_uring|epoll   the backend of every percore core: demo, fs,
                net's client and the `serve` it starts (a child inherits it);
                default: io_uring, or epoll where io_uring is unavailable

Bad arguments print one line and exit with status 2.";

/// A command line that could not be understood; printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (try `percore-bench --help`)", self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(what: String) -> UsageError {
    UsageError(what)
}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// An unknown command or flag, a missing or malformed value.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = String>,
{
    let mut args = Args::new(args);
    let Some(command) = args.next_word() else {
        return Err(usage(
            "missing command: expected `demo`, `net`, `serve` or `fs`".into(),
        ));
    };
    match command.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "demo" => parse_demo(args),
        "net" => parse_net(args),
        "serve" => parse_serve(args),
        "fs" => fs::parse(args),
        other => Err(usage(format!(
            "unknown command `{other}`: expected `demo`, `net`, `serve` or `fs`"
        ))),
    }
}

/// The words after the command, split into `--flag` and value (`--flag=value` too).
struct Args {
    words: std::vec::IntoIter<String>,
}

impl Args {
    fn new<I: IntoIterator<Item = String>>(args: I) -> Args {
        Args {
            words: args.into_iter().collect::<Vec<_>>().into_iter(),
        }
    }

    fn next_word(&mut self) -> Option<String> {
        self.words.next()
    }

    /// The next flag and its inline value, if any.
    fn next_flag(&mut self) -> Option<(String, Option<String>)> {
        let arg = self.words.next()?;
        Some(match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        })
    }

    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, UsageError> {
        inline
            .or_else(|| self.words.next())
            .ok_or_else(|| usage(format!("`{flag}` needs a value")))
    }

    fn number<T: std::str::FromStr + PartialOrd + fmt::Display>(
        &mut self,
        flag: &str,
        inline: Option<String>,
        min: T,
        max: T,
    ) -> Result<T, UsageError> {
        let value = self.value(flag, inline)?;
        match value.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(usage(format!(
                "`{flag} {value}`: expected a number from {min} to {max}"
            ))),
        }
    }
}

fn no_value(flag: &str, inline: Option<String>) -> Result<(), UsageError> {
    match inline {
        None => Ok(()),
        Some(_) => Err(usage(format!("`{flag}` takes no value"))),
    }
}

fn parse_demo(mut args: Args) -> Result<Command, UsageError> {
    let mut options = DemoOptions::default();
    while let Some((flag, inline)) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => {
                no_value(&flag, inline)?;
                options.quick = true;
            }
            "--runs" => options.runs = args.number(&flag, inline, 1, MAX_RUNS)?,
            _ => return Err(usage(format!("unknown argument `{flag}` for `demo`"))),
        }
    }
    Ok(Command::Demo(options))
}

fn parse_protocol(word: Option<String>, command: &str) -> Result<Protocol, UsageError> {
    match word.as_deref() {
        Some("echo") => Ok(Protocol::Echo),
        Some("http") => Ok(Protocol::Http),
        Some(other) => Err(usage(format!(
            "`{command} {other}`: expected `echo` or `http`"
        ))),
        None => Err(usage(format!("`{command}` needs `echo` or `http`"))),
    }
}

fn parse_addr(flag: &str, value: String) -> Result<SocketAddr, UsageError> {
    value.parse().map_err(|_| {
        usage(format!(
            "`{flag} {value}`: expected IP:PORT, e.g. 127.0.0.1:7000"
        ))
    })
}

fn parse_net(mut args: Args) -> Result<Command, UsageError> {
    let mut o = NetOptions::new(parse_protocol(args.next_word(), "net")?);
    while let Some((flag, inline)) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--target" => o.target = Some(parse_addr(&flag, args.value(&flag, inline)?)?),
            "--connections" | "-c" => {
                o.connections = args.number(&flag, inline, 1, MAX_CONNECTIONS)?
            }
            "--size" => o.size = args.number(&flag, inline, 1, MAX_SIZE)?,
            "--duration" | "-d" => {
                let secs: f64 = args.number(&flag, inline, 0.01, MAX_DURATION_SECS as f64)?;
                o.duration = Duration::from_secs_f64(secs);
            }
            "--cores" | "-t" => o.cores = args.number(&flag, inline, 1, 1024)?,
            "--rate" | "-R" => o.rate = Some(args.number(&flag, inline, 1.0, 1e9)?),
            "--server-cores" => o.server_cores = args.number(&flag, inline, 1, 1024)?,
            "--rounds" => o.rounds = args.number(&flag, inline, 1, MAX_RUNS)?,
            "--compare" => {
                no_value(&flag, inline)?;
                o.compare = true;
            }
            "--client" => o.clients = parse_clients(&args.value(&flag, inline)?, o.protocol)?,
            "--servers" => o.servers = Some(parse_servers(&args.value(&flag, inline)?)?),
            "--reuse-servers" => {
                no_value(&flag, inline)?;
                o.reuse_servers = true;
            }
            "--no-pin" => {
                no_value(&flag, inline)?;
                o.pin = false;
            }
            "--warmup" => {
                let secs: f64 = args.number(&flag, inline, 0.01, MAX_DURATION_SECS as f64)?;
                o.warmup = Some(Duration::from_secs_f64(secs));
            }
            "--json" => {
                no_value(&flag, inline)?;
                o.json = true;
            }
            "--plot" => o.plot = Some(PathBuf::from(args.value(&flag, inline)?)),
            _ => return Err(usage(format!("unknown argument `{flag}` for `net`"))),
        }
    }
    check_client(&o)?;
    if o.compare && o.target.is_some() {
        return Err(usage(
            "`--compare` starts its own servers; leave out `--target`".into(),
        ));
    }
    Ok(Command::Net(o))
}

/// The servers `--servers` may name.
///
/// `percore-balance` is `percore` started with `--balance`, `percore-rehome`
/// with `--rehome`; `percore-unpinned`
/// is `percore` whose cores stay unpinned when the others are pinned (the
/// client is still pinned); `tokio-mt` is tokio's multi-thread runtime, one
/// listener, a worker per server thread, the process on the server threads'
/// CPUs; `c-uring` is the hand-written C server on liburing
/// (`benches/c/uring_server.c`, built by `benches/scripts/build_c_server.sh`).
pub const SERVER_NAMES: [&str; 11] = [
    "percore",
    "percore-epoll",
    "percore-balance",
    "percore-rehome",
    "percore-unpinned",
    "percore-balance-unpinned",
    "percore-rehome-unpinned",
    "tokio",
    "tokio-mt",
    "monoio",
    "c-uring",
];

fn parse_servers(list: &str) -> Result<Vec<String>, UsageError> {
    let mut names: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if !SERVER_NAMES.contains(&name) {
            return Err(usage(format!(
                "`--servers {list}`: `{name}` is not one of {}",
                SERVER_NAMES.join(", ")
            )));
        }
        if !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn parse_clients(list: &str, protocol: Protocol) -> Result<Vec<Client>, UsageError> {
    let mut clients = Vec::new();
    for name in list.split(',').map(str::trim) {
        let client = Client::from_name(name, protocol).ok_or_else(|| {
            usage(format!(
                "`--client {list}`: `{name}` is not one of percore, percore-unbatched, tokio, wrk, outside"
            ))
        })?;
        if !clients.contains(&client) {
            clients.push(client);
        }
    }
    Ok(clients)
}

/// What the chosen clients cannot do.
fn check_client(o: &NetOptions) -> Result<(), UsageError> {
    for &client in &o.clients {
        let name = client.name();
        if !client.speaks(o.protocol) {
            return Err(usage(format!(
                "`--client {name}` speaks HTTP only: use tokio for echo"
            )));
        }
        if matches!(client, Client::Tokio | Client::Wrk) && o.rate.is_some() {
            return Err(usage(format!(
                "`--client {name}` is closed loop: `--rate` needs the percore client"
            )));
        }
        if client == Client::Tokio && o.cores > 1 {
            return Err(usage(
                "`--client tokio` runs one thread: leave out `--cores`".into(),
            ));
        }
    }
    if o.target.is_some() && o.clients.len() > 1 {
        return Err(usage(
            "one `--client` with `--target` (several take turns only against servers started here)"
                .into(),
        ));
    }
    if o.target.is_some() && (o.servers.is_some() || o.reuse_servers || o.warmup.is_some()) {
        return Err(usage(
            "`--servers`, `--reuse-servers` and `--warmup` are for servers started here; leave out `--target`"
                .into(),
        ));
    }
    Ok(())
}

fn parse_serve(mut args: Args) -> Result<Command, UsageError> {
    let mut o = ServeOptions {
        protocol: parse_protocol(args.next_word(), "serve")?,
        addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
        cores: 1,
        first_cpu: None,
        control: false,
        grace: Duration::from_secs(5),
        server: HttpServer::Bench,
        tls: false,
        balance: false,
        rehome: false,
    };
    while let Some((flag, inline)) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--addr" => o.addr = parse_addr(&flag, args.value(&flag, inline)?)?,
            "--cores" => o.cores = args.number(&flag, inline, 1, 1024)?,
            "--first-cpu" => o.first_cpu = Some(args.number(&flag, inline, 0, 1023)?),
            "--grace" => {
                let secs: f64 = args.number(&flag, inline, 0.0, MAX_DURATION_SECS as f64)?;
                o.grace = Duration::from_secs_f64(secs);
            }
            "--control" => {
                no_value(&flag, inline)?;
                o.control = true;
            }
            "--server" => {
                o.server = match args.value(&flag, inline)?.as_str() {
                    "bench" => HttpServer::Bench,
                    "percore-http" => HttpServer::PercoreHttp,
                    other => {
                        return Err(usage(format!(
                            "`--server {other}`: expected `bench` or `percore-http`"
                        )))
                    }
                }
            }
            "--tls" => {
                no_value(&flag, inline)?;
                o.tls = true;
            }
            "--balance" => {
                no_value(&flag, inline)?;
                o.balance = true;
            }
            "--rehome" => {
                no_value(&flag, inline)?;
                o.rehome = true;
            }
            _ => return Err(usage(format!("unknown argument `{flag}` for `serve`"))),
        }
    }
    if o.server == HttpServer::PercoreHttp && o.protocol != Protocol::Http {
        return Err(usage("`--server percore-http` serves `http` only".into()));
    }
    if o.tls && o.server != HttpServer::PercoreHttp {
        return Err(usage(
            "`--tls` needs `serve http --server percore-http`".into(),
        ));
    }
    Ok(Command::Serve(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, UsageError> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn demo_defaults_and_flags() {
        assert_eq!(parse_str("demo"), Ok(Command::Demo(DemoOptions::default())));
        let expected = Command::Demo(DemoOptions {
            runs: 3,
            quick: true,
        });
        assert_eq!(parse_str("demo --runs 3 --quick"), Ok(expected.clone()));
        assert_eq!(parse_str("demo --quick --runs=3"), Ok(expected));
    }

    #[test]
    fn net_flags() {
        let Ok(Command::Net(o)) = parse_str(
            "net http --target 127.0.0.1:80 --connections 8 --duration 0.5 --rate=1000 --json --plot p.svg",
        ) else {
            panic!("should parse");
        };
        assert_eq!(o.protocol, Protocol::Http);
        assert_eq!(o.target, Some("127.0.0.1:80".parse().unwrap()));
        assert_eq!(o.connections, 8);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.rate, Some(1000.0));
        assert!(o.json);
        assert_eq!(o.plot, Some(PathBuf::from("p.svg")));
    }

    #[test]
    fn client_and_server_flags() {
        let Ok(Command::Net(o)) =
            parse_str("net http --compare --client outside --servers tokio,percore,tokio --reuse-servers --no-pin --warmup 0.5")
        else {
            panic!("should parse");
        };
        assert_eq!(o.clients, [Client::Wrk]);
        assert_eq!(
            o.servers,
            Some(vec!["tokio".to_owned(), "percore".to_owned()])
        );
        assert!(o.reuse_servers);
        assert!(!o.pin);
        assert_eq!(o.warmup, Some(Duration::from_millis(500)));
        let Ok(Command::Net(o)) = parse_str("net echo --client outside,percore,tokio") else {
            panic!("should parse");
        };
        assert_eq!(o.clients, [Client::Tokio, Client::Percore]);
        assert!(!o.reuse_servers && o.pin);
    }

    #[test]
    fn the_c_server_is_a_server_name() {
        let Ok(Command::Net(o)) = parse_str(
            "net echo --size 128 --compare --servers percore,tokio,c-uring --client tokio",
        ) else {
            panic!("should parse");
        };
        assert_eq!(
            o.servers,
            Some(vec![
                "percore".to_owned(),
                "tokio".to_owned(),
                "c-uring".to_owned()
            ])
        );
        assert!(parse_str("net echo --compare --servers c_uring").is_err());
    }

    #[test]
    fn placement_flags() {
        let Ok(Command::Serve(o)) = parse_str("serve echo --cores 2 --balance") else {
            panic!("should parse");
        };
        assert!(o.balance);
        let Ok(Command::Serve(o)) = parse_str("serve echo --cores 2") else {
            panic!("should parse");
        };
        assert!(!o.balance);
        assert!(parse_str("serve echo --balance=yes").is_err());
        let Ok(Command::Net(o)) =
            parse_str("net echo --compare --servers percore-balance,percore-unpinned,tokio-mt")
        else {
            panic!("should parse");
        };
        assert_eq!(
            o.servers,
            Some(vec![
                "percore-balance".to_owned(),
                "percore-unpinned".to_owned(),
                "tokio-mt".to_owned()
            ])
        );
    }

    #[test]
    fn serve_percore_http() {
        let Ok(Command::Serve(o)) = parse_str("serve http --server percore-http --tls --cores 2")
        else {
            panic!("should parse");
        };
        assert_eq!(o.server, HttpServer::PercoreHttp);
        assert!(o.tls);
        assert_eq!(o.cores, 2);
        let Ok(Command::Serve(o)) = parse_str("serve http") else {
            panic!("should parse");
        };
        assert_eq!((o.server, o.tls), (HttpServer::Bench, false));
        assert_eq!(o.placement(), Placement::Kernel);
        let Ok(Command::Serve(o)) = parse_str("serve http --server percore-http --rehome") else {
            panic!("should parse");
        };
        assert_eq!(o.server, HttpServer::PercoreHttp);
        assert_eq!(o.placement(), Placement::Rehome);
    }

    #[test]
    fn help() {
        assert_eq!(parse_str("--help"), Ok(Command::Help));
        assert_eq!(parse_str("-h"), Ok(Command::Help));
        assert_eq!(parse_str("demo --help"), Ok(Command::Help));
        assert_eq!(parse_str("net echo --help"), Ok(Command::Help));
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
            "net",
            "net tcp",
            "net echo --connections 0",
            "net echo --connections -1",
            "net echo --target nowhere",
            "net echo --duration 0",
            "net echo --compare --target 127.0.0.1:1",
            "serve echo --cores 0",
            "net echo --client wrk",
            "net echo --client ab",
            "net echo --client percore,ab",
            "net echo --client percore,tokio --target 127.0.0.1:1",
            "net http --client wrk --rate 1000",
            "net echo --client tokio --cores 2",
            "net echo --servers percore,nginx",
            "net echo --target 127.0.0.1:1 --servers tokio",
            "serve echo --server percore-http",
            "serve http --server nginx",
            "serve http --tls",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
