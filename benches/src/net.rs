//! `percore-bench net`: load one server, or percore's and its peers' servers
//! in turn, and collect what each run measured on both sides.

use std::io;
use std::time::Duration;

use percore::Driver;

use crate::child::{self, ServerChild, ServerStats};
use crate::cli::NetOptions;
use crate::load::{self, LoadConfig, LoadResult};
use crate::report::median_f64;

/// One run against one server.
#[derive(Debug, Clone)]
pub struct Run {
    /// `percore`, `tokio`, `monoio`, or `target` for a server given by address.
    pub server: String,
    /// What the client measured.
    pub load: LoadResult,
    /// CPU time the server process used during the run (servers started here).
    pub server_cpu: Option<Duration>,
    /// Counter deltas during the run (percore servers).
    pub server_stats: Option<ServerStats>,
}

impl Run {
    /// Server CPU time per response.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        let cpu = self.server_cpu?;
        (self.load.requests > 0).then(|| cpu / self.load.requests.min(u32::MAX as u64) as u32)
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

/// Runs `options`: one run against `--target` or a percore server started
/// here, or `--rounds` rounds against every server of [`PEERS`].
///
/// # Errors
///
/// A server cannot start (or, for `--compare`, its binary is missing), or the
/// load cannot run (target unreachable…).
pub fn run(options: &NetOptions) -> io::Result<Vec<Run>> {
    let config = |target| LoadConfig {
        target,
        protocol: options.protocol,
        size: options.size,
        connections: options.connections,
        duration: options.duration,
        cores: options.cores,
        rate: options.rate,
        first_cpu: options.target.is_none().then_some(options.server_cores),
        progress: !options.json,
    };
    if let Some(target) = options.target {
        let load = load::run(&config(target))?;
        return Ok(vec![Run {
            server: "target".into(),
            load,
            server_cpu: None,
            server_stats: None,
        }]);
    }
    let names: &[&str] = if options.compare { &PEERS } else { &PEERS[..1] };
    let mut servers = names
        .iter()
        .map(|name| start_server(name, options))
        .collect::<io::Result<Vec<_>>>()?;
    let rounds = if options.compare { options.rounds } else { 1 };
    let mut runs = Vec::new();
    for round in 0..rounds {
        // Rotate who goes first so drift on a shared machine hits all alike.
        let count = servers.len();
        for i in 0..count {
            let server = &mut servers[(round + i) % count];
            let config = config(server.addr());
            runs.push(measure(server, &config)?);
        }
    }
    Ok(runs)
}

/// Starts the server `name` as a child on 127.0.0.1, pinned from the first CPU.
fn start_server(name: &str, options: &NetOptions) -> io::Result<ServerChild> {
    let common = [
        options.protocol.name().to_owned(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--cores".into(),
        options.server_cores.to_string(),
        "--first-cpu".into(),
        "0".into(),
        "--control".into(),
    ];
    if name == "percore" {
        let exe = std::env::current_exe()?;
        let mut args = vec!["serve".to_owned()];
        args.extend(common);
        ServerChild::spawn(name, &exe, &args)
    } else {
        let peer = child::peer_server_path()?;
        let mut args = vec![name.to_owned()];
        args.extend(common);
        ServerChild::spawn(name, &peer, &args)
    }
}

/// One load run against `server`, with its CPU time and counters around it.
pub fn measure(server: &mut ServerChild, config: &LoadConfig) -> io::Result<Run> {
    let cpu_before = server.cpu_time()?;
    let stats_before = server.stats();
    let load = load::run(config)?;
    let cpu_after = server.cpu_time()?;
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
        load,
        server_cpu: Some(cpu_after.saturating_sub(cpu_before)),
        server_stats,
    })
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
