//! `percore-bench net`: load one server, or percore's and its peers' servers
//! in turn, with percore's load generator or an outside client, and collect
//! what each run measured on both sides.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use percore::Driver;

use crate::child::{self, ServerChild, ServerStats};
use crate::cli::NetOptions;
use crate::load::{LoadConfig, LoadResult};
use crate::outside::{self, Client, Launcher};
use crate::report::median_f64;
use crate::server::Protocol;

/// One run against one server.
#[derive(Debug, Clone)]
pub struct Run {
    /// `percore`, `percore-epoll`, `tokio`, `monoio`, or `target` for a server
    /// given by address.
    pub server: String,
    /// Who sent the requests: `percore`, `tokio` or `wrk`.
    pub client: String,
    /// The round it belongs to, from 0.
    pub round: usize,
    /// What the client measured.
    pub load: LoadResult,
    /// CPU time the server process used during the run (servers started
    /// here): the sum over its live threads of `/proc/<pid>/task/*/schedstat`.
    pub server_cpu: Option<Duration>,
    /// The same from `/proc/<pid>/stat` (`utime + stime`, clock ticks; counts
    /// exited threads too).
    pub server_cpu_stat: Option<Duration>,
    /// CPU time the client used during the run.
    pub client_cpu: Option<Duration>,
    /// Times the server's threads went to sleep during the run (voluntary
    /// context switches): each is one wakeup.
    pub server_sleeps: Option<u64>,
    /// Counter deltas during the run (percore servers).
    pub server_stats: Option<ServerStats>,
}

impl Run {
    /// Server CPU time per response.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        self.per_response(self.server_cpu?)
    }

    /// Server CPU time per response, from `/proc/<pid>/stat`.
    pub fn stat_cpu_per_request(&self) -> Option<Duration> {
        self.per_response(self.server_cpu_stat?)
    }

    /// Client CPU time per response.
    pub fn client_cpu_per_request(&self) -> Option<Duration> {
        self.per_response(self.client_cpu?)
    }

    fn per_response(&self, total: Duration) -> Option<Duration> {
        (self.load.requests > 0)
            .then(|| Duration::from_secs_f64(total.as_secs_f64() / self.load.requests as f64))
    }

    /// Server SQEs per response; `None` for a server on the epoll backend,
    /// whose SQEs are its emulation's, not submissions to a ring.
    pub fn sqes_per_request(&self) -> Option<f64> {
        let stats = self.server_stats?;
        if stats.driver == Some(Driver::Epoll) {
            return None;
        }
        self.per_request(stats.sqes)
    }

    /// Server sleeps (so wakeups) per response: below one, the server handled
    /// several requests per wakeup.
    pub fn sleeps_per_request(&self) -> Option<f64> {
        self.per_request(self.server_sleeps?)
    }

    /// Server `io_uring_enter` calls per response (on the epoll backend,
    /// `epoll_wait` calls).
    pub fn enters_per_request(&self) -> Option<f64> {
        self.per_request(self.server_stats?.enters)
    }

    fn per_request(&self, count: u64) -> Option<f64> {
        (self.load.requests > 0).then(|| count as f64 / self.load.requests as f64)
    }
}

/// The servers `--compare` runs, in the order of the first round.
pub const PEERS: [&str; 3] = ["percore", "tokio", "monoio"];

/// Where the programs of a comparison are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    /// The `percore-bench` binary (its `serve` command is percore's server).
    pub percore: PathBuf,
    /// The peers' servers: the words before `tokio|monoio echo|http …`.
    pub peer: Launcher,
    /// The tokio client: the words before `echo|http --target …`.
    pub tokio_client: Launcher,
    /// The hand-written C io_uring server (`c-uring`), which may not be
    /// built: it is looked for only when a plan names it.
    pub c_uring: PathBuf,
}

impl Programs {
    /// The programs of `percore-bench net`: this binary, the
    /// `peer_server` example next to it (`peer_server client` for the tokio
    /// client) when `peers_needed`, and `c_uring_server` next to it.
    ///
    /// # Errors
    ///
    /// The peers are needed and the example is not built.
    pub fn for_this_binary(peers_needed: bool) -> io::Result<Programs> {
        let exe = std::env::current_exe()?;
        let peer = if peers_needed {
            child::peer_server_path()?
        } else {
            exe.clone()
        };
        let c_uring = child::c_uring_server_near(&exe);
        Ok(Programs {
            percore: exe,
            peer: Launcher {
                program: peer.clone(),
                args: Vec::new(),
            },
            tokio_client: Launcher {
                program: peer,
                args: vec!["client".into()],
            },
            c_uring,
        })
    }
}

/// A comparison: servers, client, rounds, how each server is started.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Server names ([`crate::cli::SERVER_NAMES`]), in the order of the first
    /// round; each later round starts one further along.
    pub servers: Vec<String>,
    /// Who sends; several take turns within each round (the first one
    /// rotating too).
    pub clients: Vec<Client>,
    /// Rounds; every server runs once per round.
    pub rounds: usize,
    /// Keep one process per server across rounds (else a fresh one per run).
    pub reuse_servers: bool,
    /// Echo or HTTP, for the servers.
    pub protocol: Protocol,
    /// Threads (cores) of each server.
    pub server_threads: usize,
    /// Pin server thread `i` to the `i`-th allowed CPU (and the client, by
    /// its `first_cpu`, after them).
    pub pin: bool,
    /// Start `percore` with `PERCORE_DRIVER=io_uring` (else it inherits this
    /// process's environment); `percore-epoll` always gets `epoll`. A server
    /// started with a driver must report that driver.
    pub percore_on_io_uring: bool,
    /// The client's load (its `target` is set per run).
    pub load: LoadConfig,
    /// Before each measured run, load the server this long with the same
    /// client, unmeasured (a warmed-up server rather than a fresh one).
    pub warmup: Option<Duration>,
}

/// Runs `options`: one run against `--target` or a percore server started
/// here, or `--rounds` rounds against every server of [`PEERS`] (or `--servers`).
///
/// # Errors
///
/// A server cannot start (or, for `--compare`, its binary is missing), or the
/// load cannot run (target unreachable, wrk missing…).
pub fn run(options: &NetOptions) -> io::Result<Vec<Run>> {
    let load = LoadConfig {
        target: options.target.unwrap_or(([127, 0, 0, 1], 0).into()),
        protocol: options.protocol,
        size: options.size,
        connections: options.connections,
        duration: options.duration,
        cores: options.cores,
        rate: options.rate,
        first_cpu: (options.target.is_none() && options.pin).then_some(options.server_cores),
        progress: !options.json
            && options.clients.len() == 1
            && matches!(
                options.clients[0],
                Client::Percore | Client::PercoreUnbatched
            ),
        send_alone: false,
    };
    let servers: Vec<String> = match &options.servers {
        Some(names) => names.clone(),
        None if options.compare => PEERS.map(str::to_owned).to_vec(),
        None => vec!["percore".to_owned()],
    };
    let peers_needed = options.clients.contains(&Client::Tokio)
        || (options.target.is_none() && servers.iter().any(|s| runs_in_peer_server(s)));
    let programs = Programs::for_this_binary(peers_needed)?;
    if let (Some(_), [client]) = (options.target, options.clients.as_slice()) {
        let outcome = outside::run(*client, &load, &programs.tokio_client)?;
        return Ok(vec![Run {
            server: "target".into(),
            client: client.name().into(),
            round: 0,
            load: outcome.load,
            server_cpu: None,
            server_cpu_stat: None,
            client_cpu: outcome.cpu,
            server_sleeps: None,
            server_stats: None,
        }]);
    }
    let plan = Plan {
        servers,
        clients: options.clients.clone(),
        rounds: if options.compare { options.rounds } else { 1 },
        reuse_servers: options.reuse_servers,
        protocol: options.protocol,
        server_threads: options.server_cores,
        pin: options.pin,
        percore_on_io_uring: false,
        load,
        warmup: options.warmup,
    };
    run_plan(&plan, &programs)
}

/// Runs `plan`: every round, every client against every server once, the
/// first client and the first server rotating so drift on a shared machine
/// hits all alike; a fresh server process for each run unless
/// `plan.reuse_servers`.
///
/// # Errors
///
/// A server cannot start or reports the wrong backend, or a client run fails.
pub fn run_plan(plan: &Plan, programs: &Programs) -> io::Result<Vec<Run>> {
    let mut kept: Vec<Option<ServerChild>> = Vec::new();
    if plan.reuse_servers {
        for name in &plan.servers {
            kept.push(Some(start_server(name, plan, programs)?));
        }
    }
    let count = plan.servers.len();
    let mut runs = Vec::new();
    for round in 0..plan.rounds {
        for c in 0..plan.clients.len() {
            let client = plan.clients[(round + c) % plan.clients.len()];
            for i in 0..count {
                let index = (round + i) % count;
                let mut fresh = None;
                let server = match kept.get_mut(index).and_then(Option::as_mut) {
                    Some(server) => server,
                    None => fresh.insert(start_server(&plan.servers[index], plan, programs)?),
                };
                let mut load = plan.load.clone();
                load.target = server.addr();
                if let Some(warmup) = plan.warmup {
                    let warm = LoadConfig {
                        duration: warmup,
                        progress: false,
                        ..load.clone()
                    };
                    outside::run(client, &warm, &programs.tokio_client)?;
                }
                runs.push(measure(server, client, &load, programs, round)?);
                // A fresh server ends here, before the next one starts.
                drop(fresh);
            }
        }
    }
    Ok(runs)
}

/// Whether the server `name` is one of the `peer_server` example's (tokio's
/// or monoio's), not percore's or the C server.
fn runs_in_peer_server(name: &str) -> bool {
    !name.starts_with("percore") && name != C_URING
}

/// The name of the hand-written C io_uring server (`benches/c/uring_server.c`).
pub const C_URING: &str = "c-uring";

/// The backend the server `name` must be started on, if any.
fn driver_of(name: &str, plan: &Plan) -> Option<Driver> {
    match name {
        "percore-epoll" => Some(Driver::Epoll),
        "percore"
        | "percore-balance"
        | "percore-rehome"
        | "percore-unpinned"
        | "percore-balance-unpinned"
        | "percore-rehome-unpinned"
            if plan.percore_on_io_uring =>
        {
            Some(Driver::IoUring)
        }
        _ => None,
    }
}

/// Starts the server `name` as a child on 127.0.0.1, pinned from the first
/// CPU when `plan.pin`.
///
/// # Errors
///
/// It cannot start, or it reports another backend than the one it was given.
pub fn start_server(name: &str, plan: &Plan, programs: &Programs) -> io::Result<ServerChild> {
    let mut common = vec![
        plan.protocol.name().to_owned(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--cores".into(),
        plan.server_threads.to_string(),
        "--control".into(),
    ];
    if plan.pin && !name.ends_with("-unpinned") {
        common.extend(["--first-cpu".into(), "0".into()]);
    }
    if name.starts_with("percore") {
        let mut args = vec!["serve".to_owned()];
        args.extend(common);
        if name.starts_with("percore-balance") {
            args.push("--balance".into());
        }
        if name.starts_with("percore-rehome") {
            args.push("--rehome".into());
        }
        let driver = driver_of(name, plan);
        let env: Vec<(&str, &str)> = driver
            .iter()
            .map(|driver| ("PERCORE_DRIVER", driver.name()))
            .collect();
        let mut server = ServerChild::spawn_with_env(name, &programs.percore, &args, &env)?;
        if let Some(driver) = driver {
            let runs_on = server.stats().and_then(|stats| stats.driver);
            if runs_on != Some(driver) {
                return Err(io::Error::other(format!(
                    "{name} server should run on {driver}, it reports {runs_on:?}"
                )));
            }
        }
        Ok(server)
    } else if name == C_URING {
        let program = child::c_uring_server_at(&programs.c_uring)?;
        ServerChild::spawn(name, program, &common)
    } else {
        let mut args = programs.peer.args.clone();
        args.push(name.to_owned());
        args.extend(common);
        ServerChild::spawn(name, &programs.peer.program, &args)
    }
}

/// One load run of `client` against `server`, with the server's CPU time and
/// counters around it.
///
/// # Errors
///
/// The server is gone, or the client run fails.
pub fn measure(
    server: &mut ServerChild,
    client: Client,
    config: &LoadConfig,
    programs: &Programs,
    round: usize,
) -> io::Result<Run> {
    let cpu_before = server.cpu_time()?;
    let stat_before = server.cpu_time_stat().ok();
    let sleeps_before = server.sleeps().ok();
    let stats_before = server.stats();
    let outcome = outside::run(client, config, &programs.tokio_client)?;
    let cpu_after = server.cpu_time()?;
    let stat_after = server.cpu_time_stat().ok();
    let sleeps_after = server.sleeps().ok();
    let stats_after = server.stats();
    let server_stats = match (stats_before, stats_after) {
        (Some(a), Some(b)) => Some(ServerStats {
            enters: b.enters.saturating_sub(a.enters),
            sqes: b.sqes.saturating_sub(a.sqes),
            driver: b.driver,
        }),
        _ => None,
    };
    Ok(Run {
        server: server.name().to_owned(),
        client: client.name().to_owned(),
        round,
        load: outcome.load,
        server_cpu: Some(cpu_after.saturating_sub(cpu_before)),
        server_cpu_stat: stat_before
            .zip(stat_after)
            .map(|(before, after)| after.saturating_sub(before)),
        client_cpu: outcome.cpu,
        server_sleeps: sleeps_before
            .zip(sleeps_after)
            .map(|(before, after)| after.saturating_sub(before)),
        server_stats,
    })
}

/// `numerator`'s figure over `denominator`'s in each round where both have
/// one, in round order.
pub fn per_round_ratios(
    runs: &[Run],
    numerator: &str,
    denominator: &str,
    figure: impl Fn(&Run) -> Option<f64>,
) -> Vec<f64> {
    let of = |server: &str, round: usize| {
        runs.iter()
            .find(|run| run.server == server && run.round == round)
            .and_then(&figure)
    };
    let last = runs.iter().map(|run| run.round).max().unwrap_or(0);
    (0..=last)
        .filter_map(|round| Some(of(numerator, round)? / of(denominator, round)?.max(1e-12)))
        .collect()
}

/// The median of `figure` over the runs against `server`.
pub fn median_of(runs: &[Run], server: &str, figure: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter(|run| run.server == server)
        .filter_map(figure)
        .collect();
    (!values.is_empty()).then(|| median_f64(values))
}

/// The clients that appear in `runs`, in first-seen order.
pub fn clients(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        if !names.contains(&run.client) {
            names.push(run.client.clone());
        }
    }
    names
}

/// The servers that appear in `runs`, in first-seen order.
pub fn servers(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        if !names.contains(&run.server) {
            names.push(run.server.clone());
        }
    }
    names
}
