//! `percore-bench`: runs percore's demo workload and prints a table of figures.
//!
//! The comparison with tokio and monoio lives in `cargo bench` (`benches/`), so
//! this binary links nothing but percore.

mod cli;
mod demo;
mod report;

use std::io;
use std::process::ExitCode;

use cli::{Command, DemoOptions};
use demo::Sizes;
use report::{median, median_f64, Table};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("percore-bench: {err}");
            return ExitCode::from(2);
        }
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
            Err(err) => {
                eprintln!("percore-bench: demo failed: {err}");
                ExitCode::from(1)
            }
        },
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

    Ok(table)
}
