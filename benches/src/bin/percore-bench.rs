//! `percore-bench`: percore's demo, a load generator (`net`) and the servers it
//! loads (`serve`), and fio-like file jobs (`fs`). See `percore-bench --help`.
//!
//! The peers (tokio, monoio) are not linked here: `net --compare` runs their
//! servers from the `peer_server` example as child processes.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use percore_bench::child::{self, ServerStats};
use percore_bench::cli::{
    self, Command, DemoOptions, FsOptions, HttpServer, NetOptions, ServeOptions,
};
use percore_bench::demo::{self, NetRun, Sizes};
use percore_bench::fs_job::JobResult;
use percore_bench::report::{self, median, median_f64, Table};
use percore_bench::server::{Protocol, Server};
use percore_bench::{fs, fs_output, http_serve, net, output, plot};

/// Exit status for bad arguments: a bad flag, an unreachable target, an
/// unwritable `--plot` file, a missing peer server binary, a file that cannot
/// be laid out or read.
const USAGE_STATUS: u8 = 2;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(err) => return fail(USAGE_STATUS, &err.to_string()),
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Demo(options) => match run_demo(options) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(err) => fail(1, &format!("demo failed: {err}")),
        },
        Command::Net(options) => run_net(&options),
        Command::Fs(options) => run_fs(&options),
        Command::Serve(options) => match serve(options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(USAGE_STATUS, &format!("serve: {err}")),
        },
    }
}

fn fail(status: u8, line: &str) -> ExitCode {
    eprintln!("percore-bench: {line}");
    ExitCode::from(status)
}

/// Finds an unwritable `--plot` file before the run, not after it: writes a
/// placeholder of a few bytes, so a full device fails here too.
fn check_plot(path: Option<&Path>) -> Result<(), ExitCode> {
    let Some(path) = path else {
        return Ok(());
    };
    std::fs::write(path, b"<!-- percore-bench: plot pending -->\n")
        .map_err(|err| fail(USAGE_STATUS, &format!("--plot {}: {err}", path.display())))
}

fn run_net(options: &NetOptions) -> ExitCode {
    if let Err(code) = check_plot(options.plot.as_deref()) {
        return code;
    }
    let runs = match net::run(options) {
        Ok(runs) => runs,
        // Every way `net` fails before measuring anything is its arguments' or
        // setup's: the target, the peer binary, a port.
        Err(err) => return fail(USAGE_STATUS, &format!("net: {err}")),
    };
    if options.json {
        let mut doc = output::json(options, &runs);
        if options.compare {
            doc["machine"] = percore_bench::cpu::machine().into();
        }
        println!("{doc}");
    } else {
        print!("{}", output::table(options, &runs));
        if options.compare {
            println!("machine: {}", percore_bench::cpu::machine());
        }
    }
    if let Some(path) = &options.plot {
        if let Err(err) = plot::plot(path, &runs) {
            return fail(USAGE_STATUS, &err.to_string());
        }
    }
    ExitCode::SUCCESS
}

fn run_fs(options: &FsOptions) -> ExitCode {
    if let Err(code) = check_plot(options.plot.as_deref()) {
        return code;
    }
    // Every way `fs` fails is its arguments' or the file's: a read-only or
    // full place, `--bs` against the direct I/O alignment, an I/O error.
    let report = match fs::run(options) {
        Ok(report) => report,
        Err(err) => return fail(USAGE_STATUS, &format!("fs: {err}")),
    };
    if options.json {
        println!("{}", fs_output::json(options, &report));
    } else {
        print!("{}", fs_output::table(options, &report));
    }
    if let Some(path) = &options.plot {
        if let Err(err) = plot::draw(path, &fs_output::series(&report.runs), "IOPS") {
            return fail(USAGE_STATUS, &err.to_string());
        }
    }
    ExitCode::SUCCESS
}

fn serve(options: ServeOptions) -> io::Result<()> {
    if options.server == HttpServer::PercoreHttp {
        return http_serve::serve(&options);
    }
    let server = Server::start(
        options.protocol,
        options.addr,
        options.cores,
        options.first_cpu,
        options.placement(),
    )?;
    let cores = options.cores;
    if !options.control {
        // Before the line below: a SIGTERM right after it drains the server.
        server.drain_on_signals()?;
    }
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "percore-bench serve: {} listening on {} ({cores} core{})",
            options.protocol,
            server.addr(),
            if cores == 1 { "" } else { "s" }
        )?;
        out.flush()?;
    }
    if options.control {
        child::answer_stdin(|| {
            report_per_core(&server);
            server.stats().ok().map(|s| ServerStats {
                enters: s.enters,
                sqes: s.sqes,
                driver: Some(s.driver),
            })
        });
        return Ok(());
    }
    let left = server.wait_for_shutdown(options.grace)?;
    println!(
        "percore-bench serve: shut down ({left} connections cut at the end of the {:?} grace)",
        options.grace
    );
    Ok(())
}

/// With `PERCORE_BENCH_PER_CORE` set, prints on stderr what each core did
/// so far (at every `stats` request): how the connections were split, and
/// how busy each core was.
fn report_per_core(server: &Server) {
    if std::env::var_os("PERCORE_BENCH_PER_CORE").is_none() {
        return;
    }
    match server.per_core() {
        Ok(cores) => {
            for (core, report) in cores.iter().enumerate() {
                let balance = match report.balance {
                    None => String::new(),
                    Some((live, None)) => format!(", {live} open"),
                    Some((live, Some(load))) => format!(
                        ", {live} open, slowdown {:.2} (waiting {:.2}, running {:.2})",
                        f64::from(load.slowdown) / 1e3,
                        f64::from(load.waiting) / 1e3,
                        f64::from(load.running) / 1e3
                    ),
                };
                eprintln!(
                    "percore-bench serve: core {core}: {} connections, {:.3} s CPU, {} polls, {} parks{balance}",
                    report.connections,
                    report.cpu.as_secs_f64(),
                    report.stats.polls,
                    report.stats.parks
                );
            }
            if server.moves() > 0 {
                eprintln!(
                    "percore-bench serve: {} connections moved between requests",
                    server.moves()
                );
            }
        }
        Err(err) => eprintln!("percore-bench serve: per-core report: {err}"),
    }
}

/// Runs `f` `runs` times, failing on the first error.
fn repeat<T>(runs: usize, mut f: impl FnMut() -> io::Result<T>) -> io::Result<Vec<T>> {
    (0..runs).map(|_| f()).collect()
}

fn run_demo(options: DemoOptions) -> io::Result<Table> {
    let sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::FULL
    };
    let runs = options.runs;
    let mut table = Table::new(format!(
        "percore demo: median of {runs} run{} ({} CPUs available)",
        if runs == 1 { "" } else { "s" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    ));

    let spawn = repeat(runs, || demo::spawn_join(sizes.tasks))?;
    let spawn_time = median(spawn.iter().map(|r| r.elapsed));
    table.section(format!("spawn+join {} tasks", report::count(sizes.tasks)));
    table.row("time", report::duration(spawn_time));
    table.row(
        "per task",
        report::duration(spawn_time / sizes.tasks.max(1) as u32),
    );

    let sleeps = repeat(runs, || demo::sleeps(sizes.sleeps))?;
    table.section(format!(
        "{} concurrent sleeps, 1..=100 ms",
        report::count(sizes.sleeps)
    ));
    table.row(
        "wall time",
        report::duration(median(sleeps.iter().map(|r| r.wall))),
    );
    table.row(
        "overshoot past last deadline",
        report::duration(median(sleeps.iter().map(|r| r.overshoot))),
    );

    let nops = repeat(runs, || demo::nops(sizes.nops, sizes.nops_in_flight))?;
    let per_op = |x: u64| x as f64 / sizes.nops.max(1) as f64;
    table.section(format!(
        "{} NOPs, {} in flight",
        report::count(sizes.nops),
        sizes.nops_in_flight
    ));
    let nop_time = median(nops.iter().map(|r| r.elapsed));
    table.row(
        "ops/s",
        report::rate(sizes.nops as f64 / nop_time.as_secs_f64().max(1e-9)),
    );
    table.row(
        "enters per op",
        format!("{:.4}", median_f64(nops.iter().map(|r| per_op(r.enters)))),
    );
    table.row(
        "sqes per op",
        format!("{:.4}", median_f64(nops.iter().map(|r| per_op(r.sqes)))),
    );

    // The smoke is about the cross-thread path working, so its per-core load is
    // small: a tenth of the spawn workload, split across cores.
    let smoke_tasks = sizes.tasks / 10 / sizes.cores.max(1);
    let smoke = repeat(runs, || demo::smoke(sizes.cores, smoke_tasks))?;
    table.section(format!(
        "run_on_all, {} pinned cores ({} tasks + 1 ms sleep + NOP each)",
        sizes.cores,
        report::count(smoke_tasks)
    ));
    table.row(
        "wall time",
        report::duration(median(smoke.iter().map(|r| r.wall))),
    );
    table.row("result", "ok (each core answered as itself)".to_owned());

    for (protocol, what) in [
        (Protocol::Echo, "echo, 128 B messages"),
        (Protocol::Http, "HTTP hello world, keep-alive"),
    ] {
        let net_runs = repeat(runs, || {
            demo::net(protocol, 128, sizes.connections, sizes.net_run)
        })?;
        table.section(format!(
            "{what}, {} connections, {} per run: 1 server core, 1 client core, 127.0.0.1",
            sizes.connections,
            report::duration(sizes.net_run)
        ));
        net_rows(&mut table, &net_runs);
    }
    let fs_runs = demo::fs_randread(sizes.fs_size, sizes.fs_run, runs)?;
    table.section(format!(
        "4 KiB random reads, 32 in flight, page cache warm, {} temp file, {} per run: 1 core",
        report::bytes(sizes.fs_size),
        report::duration(sizes.fs_run)
    ));
    fs_rows(&mut table, &fs_runs);
    Ok(table)
}

fn fs_rows(table: &mut Table, runs: &[JobResult]) {
    table.row(
        "IOPS",
        report::rate(median_f64(runs.iter().map(JobResult::iops))),
    );
    table.row(
        "MiB/s",
        format!("{:.1}", median_f64(runs.iter().map(JobResult::mib_per_s))),
    );
    for (label, q) in [("latency p50", 0.5), ("latency p99", 0.99)] {
        let ns = median_f64(runs.iter().map(|r| r.latency.value_at_quantile(q) as f64));
        table.row(label, report::duration(Duration::from_nanos(ns as u64)));
    }
}

fn net_rows(table: &mut Table, runs: &[NetRun]) {
    let m = |f: &dyn Fn(&NetRun) -> f64| median_f64(runs.iter().map(f));
    let per_request = |run: &NetRun, count: f64| count / run.load.requests.max(1) as f64;
    table.row("requests/s", report::rate(m(&|r| r.load.rate())));
    for (label, q) in [("latency p50", 0.5), ("latency p99", 0.99)] {
        table.row(
            label,
            report::duration(median(runs.iter().map(|r| r.load.quantile(q)))),
        );
    }
    table.row(
        "server CPU per request",
        format!(
            "{:.2} µs",
            m(&|r| per_request(r, r.server_cpu.as_nanos() as f64)) / 1e3
        ),
    );
    table.row(
        "server SQEs per request",
        format!("{:.3}", m(&|r| per_request(r, r.sqes as f64))),
    );
    table.row(
        "server enters per request",
        format!("{:.3}", m(&|r| per_request(r, r.enters as f64))),
    );
}
