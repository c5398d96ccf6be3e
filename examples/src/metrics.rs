//! Every core's [`Stats`] in Prometheus' text exposition format, served on
//! `GET /metrics` by the runtime's own cores: the `metrics` example.
//!
//! Each core runs one `SO_REUSEPORT` listener; whichever core takes a scrape
//! answers it with [`percore::all_stats`] (its own figures exact, the other
//! cores' as they last published them: see [`percore::Runtime::stats`]). One
//! request per connection, then `Connection: close`: a scraper's pattern.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use percore::net::tcp::ListenOptions;
use percore::net::{TcpListener, TcpStream};
use percore::shutdown::Shutdown;
use percore::Stats;

/// The longest request head read (a scrape's is a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request before it is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One metric: its name, Prometheus type, help text, and where its value is.
struct Metric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Stats) -> u64,
}

const METRICS: &[Metric] = &[
    Metric {
        name: "percore_enters_total",
        kind: "counter",
        help: "io_uring_enter calls (epoll_wait calls on the epoll backend).",
        value: |s| s.enters,
    },
    Metric {
        name: "percore_sqes_total",
        kind: "counter",
        help: "Submission entries pushed.",
        value: |s| s.sqes,
    },
    Metric {
        name: "percore_cqes_total",
        kind: "counter",
        help: "Completion entries reaped.",
        value: |s| s.cqes,
    },
    Metric {
        name: "percore_polls_total",
        kind: "counter",
        help: "Task polls.",
        value: |s| s.polls,
    },
    Metric {
        name: "percore_parks_total",
        kind: "counter",
        help: "Times the core blocked in the kernel waiting for work.",
        value: |s| s.parks,
    },
    Metric {
        name: "percore_spins_total",
        kind: "counter",
        help: "Times an idle core polled its ring before parking.",
        value: |s| s.spins,
    },
    Metric {
        name: "percore_stalls_total",
        kind: "counter",
        help: "Polls longer than the stall threshold.",
        value: |s| s.stalls,
    },
    Metric {
        name: "percore_timers_fired_total",
        kind: "counter",
        help: "Timers that expired.",
        value: |s| s.timers_fired,
    },
    Metric {
        name: "percore_spawned_total",
        kind: "counter",
        help: "Tasks spawned on the core.",
        value: |s| s.spawned,
    },
    Metric {
        name: "percore_remote_wakes_total",
        kind: "counter",
        help: "Tasks or jobs that arrived from other threads.",
        value: |s| s.remote_wakes,
    },
    Metric {
        name: "percore_cq_overflows_total",
        kind: "counter",
        help: "Enters that found the completion queue overflowed.",
        value: |s| s.overflows,
    },
    Metric {
        name: "percore_sq_full_total",
        kind: "counter",
        help: "Times the submission queue was full and flushed early.",
        value: |s| s.sq_full,
    },
    Metric {
        name: "percore_msg_rings_total",
        kind: "counter",
        help: "Parked cores woken with IORING_OP_MSG_RING.",
        value: |s| s.msg_rings,
    },
    Metric {
        name: "percore_faults_total",
        kind: "counter",
        help: "Faults injected (tests only).",
        value: |s| s.faults,
    },
    Metric {
        name: "percore_coop_yields_total",
        kind: "counter",
        help: "Task polls cut short by the cooperative budget.",
        value: |s| s.coop_yields,
    },
    Metric {
        name: "percore_ops_in_flight",
        kind: "gauge",
        help: "Operations in flight.",
        value: |s| s.in_flight as u64,
    },
    Metric {
        name: "percore_timers",
        kind: "gauge",
        help: "Timers pending.",
        value: |s| s.timers as u64,
    },
    Metric {
        name: "percore_tasks",
        kind: "gauge",
        help: "Tasks alive.",
        value: |s| s.tasks as u64,
    },
];

/// `stats` (one entry per core) in Prometheus' text exposition format
/// (version 0.0.4): for each metric a `# HELP` and a `# TYPE` line, then one
/// sample per core, labelled `core="N"`.
///
/// # Examples
///
/// ```
/// let stats = percore::run(async { percore::all_stats() })?;
/// let text = percore_examples::metrics::prometheus_text(&stats);
/// assert!(text.contains("# TYPE percore_polls_total counter\n"));
/// assert!(text.contains("percore_polls_total{core=\"0\"} "));
/// # std::io::Result::Ok(())
/// ```
pub fn prometheus_text(stats: &[Stats]) -> String {
    let mut text = String::with_capacity(METRICS.len() * (120 + 40 * stats.len()));
    for metric in METRICS {
        let _ = writeln!(text, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(text, "# TYPE {} {}", metric.name, metric.kind);
        for core in stats {
            let value = (metric.value)(core);
            let _ = writeln!(text, "{}{{core=\"{}\"}} {value}", metric.name, core.core);
        }
    }
    text
}

/// The flags of the example: `--addr 127.0.0.1:PORT --cores N`.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// Where to listen (port 0 picks a free one, printed at start).
    pub addr: SocketAddr,
    /// How many cores, one listener each.
    pub cores: usize,
}

impl Flags {
    /// Reads the flags from `args` (the command line without the program
    /// name); defaults: `127.0.0.1:9100`, every CPU.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unknown flag or a value that does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_examples::metrics::Flags;
    ///
    /// let flags = Flags::parse(["--cores", "2"].map(String::from))?;
    /// assert_eq!(flags.cores, 2);
    /// assert_eq!(flags.addr.to_string(), "127.0.0.1:9100");
    /// assert!(Flags::parse(["--port", "1"].map(String::from)).is_err());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>) -> io::Result<Flags> {
        let mut flags = Flags {
            addr: SocketAddr::from(([127, 0, 0, 1], 9100)),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args.next().unwrap_or_default();
            let bad = |what: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{flag} {value:?}: {what}"),
                )
            };
            match flag.as_str() {
                "--addr" => flags.addr = value.parse().map_err(|_| bad("not an address"))?,
                "--cores" => {
                    flags.cores = value.parse().map_err(|_| bad("not a number"))?;
                    if flags.cores == 0 {
                        return Err(bad("at least 1"));
                    }
                }
                _ => return Err(bad("usage: --addr IP:PORT --cores N")),
            }
        }
        Ok(flags)
    }
}

/// Binds `cores` `SO_REUSEPORT` listeners on `addr` (the kernel spreads
/// connections across them): the address they share (the port chosen, for
/// port 0) and the listeners, to move one to each core.
///
/// # Errors
///
/// Binding fails (address in use…).
pub fn bind(
    addr: SocketAddr,
    cores: usize,
) -> io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let options = ListenOptions::new().reuse_port(true);
    let first = options.bind_tcp(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first.into_std()?];
    for _ in 1..cores {
        listeners.push(options.bind_tcp(addr)?.into_std()?);
    }
    Ok((addr, listeners))
}

/// Answers scrapes on `listener` until `shutdown` begins (then the listener
/// closes; scrapes in progress finish on their own, each bounded by a read
/// timeout).
pub async fn serve(listener: TcpListener, shutdown: Shutdown) {
    let mut incoming = listener.incoming();
    loop {
        let next = match select(pin!(incoming.next()), pin!(shutdown.begun())).await {
            Either::Left((Some(next), _)) => next,
            Either::Left((None, _)) | Either::Right(_) => return,
        };
        match next {
            Ok(stream) => drop(percore::spawn(async move {
                if let Err(err) = answer(&stream).await {
                    eprintln!("metrics: {err}");
                }
            })),
            // `incoming` backs off by itself on EMFILE/ENFILE.
            Err(err) => eprintln!("metrics: accept on core {}: {err}", percore::current_core()),
        }
    }
}

/// Reads one request head and answers it: `GET /metrics` with every core's
/// stats, anything else with 404 (or 400 if it does not parse), then closes.
async fn answer(stream: &TcpStream) -> io::Result<()> {
    let head = match percore::time::timeout(READ_TIMEOUT, read_head(stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()), // a client that sends nothing is dropped
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let response = match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => match (request.method, request.path) {
            (Some("GET"), Some("/metrics")) => {
                let body = prometheus_text(&percore::all_stats());
                response("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
            }
            _ => response("404 Not Found", "text/plain", "try GET /metrics\n"),
        },
        _ => response("400 Bad Request", "text/plain", "bad request\n"),
    };
    let (res, _) = stream.write_all(response.into_bytes()).await;
    res?;
    stream.shutdown(std::net::Shutdown::Write).await
}

/// Bytes up to the end of the request head (`\r\n\r\n`), at most
/// [`MAX_HEAD`]; what arrived if the client stops sending before that.
async fn read_head(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        head.reserve(1024.min(MAX_HEAD - head.len()));
        let (res, buf) = stream.read(head).await;
        head = buf;
        if res? == 0 {
            break;
        }
    }
    Ok(head)
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_help_type_and_one_sample_per_core() {
        let stats: Vec<Stats> = (0..3)
            .map(|core| {
                let mut stats = Stats::default();
                stats.core = core;
                stats.polls = 10 * core as u64;
                stats
            })
            .collect();
        let text = prometheus_text(&stats);
        assert_eq!(text.lines().count(), METRICS.len() * (2 + 3));
        assert!(
            text.contains("percore_polls_total{core=\"2\"} 20\n"),
            "{text}"
        );
        for metric in METRICS {
            assert!(metric.name.starts_with("percore_"));
            assert_eq!(metric.kind == "counter", metric.name.ends_with("_total"));
        }
    }
}
