//! The op-sequence fuzzer's interpreter: bytes become a script of reads and
//! writes on a pipe, a Unix socket pair and a temp file, polls, task aborts,
//! timeouts, virtual sleeps and an early end of the runtime — on either
//! backend, under a fault spec the script picks. After each script the op
//! table is empty, every fd is closed, no panic escaped, and every byte read
//! is a byte that was written, where it was written.
//!
//! Layout: byte 0 picks the faults, byte 1 their seed, byte 2 the backend;
//! then two bytes per command (what, argument): what % 16 is a read (0, 1)
//! or a write (2, 3) on a stream, a file write (4) or read (5), a few polls
//! (6, 7, 12–14), an abort of a task in flight (8, 9), a virtual sleep (10),
//! a read with a deadline (11), or the end of the runtime with everything in
//! flight (15).

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use percore_runtime::op::{Read, Write};
use percore_runtime::{spawn, Builder, Driver, JoinHandle, Op};

/// The fault specs a script can pick (`Builder::faults`).
const FAULTS: [&str; 4] = [
    "none",
    "light",
    "short=0.3,eintr=0.1,delay=0.3/6,eio=0.05@read+write,ecanceled=0.05,econnreset=0.05@read+write,eagain=0.03@read",
    "submit=0.2,sq=4,cq=8,delay=0.2,short=0.2",
];

/// Byte `i` of the stream every writer writes from (a sequence with no short
/// period, so a long run of it matches at few places).
pub fn byte(i: usize) -> u8 {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (x >> 29) as u8
}

/// Byte `pos` of the file, once written.
fn file_byte(pos: usize) -> u8 {
    byte(pos.wrapping_mul(31).wrapping_add(7))
}

const FILE_BLOCK: usize = 512;
const FILE_BLOCKS: usize = 16;

/// One byte stream (the pipe, the socket pair): what was written and read.
#[derive(Default)]
struct Stream {
    /// Bytes of `byte(..)` the writers wrote, as far as their results said;
    /// the next write starts there.
    written: usize,
    /// Bytes read so far, in order.
    read: usize,
    /// Reads and writes aborted in flight. With none, what was read is
    /// exactly the start of what was written. An aborted read may have
    /// taken bytes nobody saw; an aborted write may have written bytes the
    /// next write writes again.
    aborted_reads: usize,
    aborted_writes: usize,
}

#[derive(Default)]
struct State {
    streams: [Stream; 2],
    failures: Vec<String>,
}

impl State {
    /// Checks a chunk just read from stream `s`: the next bytes of the stream
    /// if nothing was aborted; otherwise pieces of it, at most one more piece
    /// than writes were aborted (a piece of 3 bytes or fewer matches
    /// somewhere anyway, so only longer damage is caught then).
    fn check_read(&mut self, s: usize, chunk: &[u8]) {
        let stream = &mut self.streams[s];
        let at = stream.read;
        stream.read += chunk.len();
        let clean = stream.aborted_reads + stream.aborted_writes == 0;
        let failure = if clean {
            let wrong = chunk.iter().enumerate().find(|(k, b)| **b != byte(at + k));
            wrong.map(|(k, _)| {
                format!(
                    "stream {s}: byte {} read is not the byte written there",
                    at + k
                )
            })
        } else {
            let limit = stream.written + (1 << 16);
            let pieces = pieces(chunk, limit);
            (pieces > 1 + stream.aborted_writes).then(|| {
                format!(
                    "stream {s}: a read of {} bytes is {pieces} pieces of what was written, with {} writes aborted",
                    chunk.len(),
                    stream.aborted_writes
                )
            })
        };
        self.failures.extend(failure);
    }
}

/// How many windows of the stream (below `limit`), taken greedily longest
/// first, make up `chunk`.
fn pieces(mut chunk: &[u8], limit: usize) -> usize {
    let mut count = 0;
    while !chunk.is_empty() {
        let longest = (0..limit)
            .map(|i| {
                chunk
                    .iter()
                    .enumerate()
                    .take_while(|(k, b)| **b == byte(i + k))
                    .count()
            })
            .max()
            .unwrap_or(0)
            .max(1);
        chunk = &chunk[longest..];
        count += 1;
    }
    count
}

/// The fds a script works on.
struct Fds {
    /// (read end, write end) of the pipe and of the socket pair.
    streams: [(OwnedFd, OwnedFd); 2],
    file: std::fs::File,
}

impl Fds {
    fn new(path: &std::path::Path) -> Fds {
        let mut pipe = [0; 2];
        let mut pair = [0; 2];
        // SAFETY: each array has room for the two fds the call writes.
        unsafe {
            assert_eq!(libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC), 0);
            assert_eq!(
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    pair.as_mut_ptr()
                ),
                0
            );
        }
        // SAFETY: the four fds were just made and belong to nobody else.
        let own = |fd| unsafe { OwnedFd::from_raw_fd(fd) };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("temp file");
        file.set_len((FILE_BLOCK * FILE_BLOCKS) as u64)
            .expect("temp file size");
        Fds {
            streams: [(own(pipe[0]), own(pipe[1])), (own(pair[0]), own(pair[1]))],
            file,
        }
    }
}

/// Runs `script`; `Err` lists what went wrong. `path` is a temp file path the
/// script may create and remove.
pub fn run(script: &[u8], path: &std::path::Path) -> Result<(), String> {
    let [faults, seed, backend, commands @ ..] = script else {
        return Ok(());
    };
    let spec = format!("{},seed={seed}", FAULTS[*faults as usize % FAULTS.len()]);
    let driver = if backend % 2 == 0 {
        Driver::Auto
    } else {
        Driver::Epoll
    };
    let fds = Rc::new(Fds::new(path));
    let state = Rc::new(RefCell::new(State::default()));
    let builder = Builder::new()
        .driver(driver)
        .start_paused(true)
        .stall_threshold(None)
        .faults(&spec)
        .map_err(|err| err.to_string())?;
    let commands = commands.to_vec();
    let (inner_fds, inner_state) = (Rc::clone(&fds), Rc::clone(&state));
    let ended = builder
        .block_on(async move { interpret(&commands, inner_fds, inner_state).await })
        .map_err(|err| format!("runtime: {err}"))?;
    drop(fds);
    let _ = std::fs::remove_file(path);
    let mut failures = std::mem::take(&mut state.borrow_mut().failures);
    if let Err(left) = ended {
        failures.push(left);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Tasks in flight, by slot: a read and a write per stream, a file read and
/// a file write.
type Slots = [Option<JoinHandle<()>>; 6];

/// Runs the commands; `Err` if ops were left in flight at a clean end.
async fn interpret(commands: &[u8], fds: Rc<Fds>, state: Rc<RefCell<State>>) -> Result<(), String> {
    let mut slots: Slots = Default::default();
    for pair in commands.chunks_exact(2) {
        let (what, arg) = (pair[0] % 16, pair[1] as usize);
        match what {
            0 | 1 => start_read(&mut slots, &fds, &state, arg % 2, 1 + (arg / 2) * 32),
            2 | 3 => start_write(&mut slots, &fds, &state, arg % 2, 1 + (arg / 2) * 32),
            4 => start_file(&mut slots, &fds, &state, arg, true),
            5 => start_file(&mut slots, &fds, &state, arg, false),
            6 | 7 | 12 | 13 | 14 => {
                for _ in 0..=arg % 4 {
                    percore_runtime::yield_now().await;
                }
            }
            8 | 9 => {
                let slot = arg % slots.len();
                if let Some(task) = slots[slot].take() {
                    if !task.is_finished() {
                        let mut state = state.borrow_mut();
                        match slot {
                            0 | 2 => state.streams[slot / 2].aborted_reads += 1,
                            1 | 3 => state.streams[slot / 2].aborted_writes += 1,
                            _ => {}
                        }
                    }
                    task.abort();
                }
            }
            10 => percore_runtime::time::sleep(Duration::from_millis(arg as u64)).await,
            11 => {
                // A read with a deadline: dropped in flight when it passes.
                let s = arg % 2;
                if slots[2 * s].is_none() {
                    let fd = fds.streams[s].0.as_raw_fd();
                    let read = Op::new(Read::new(fd, Vec::with_capacity(64), u64::MAX));
                    match percore_runtime::time::timeout(
                        Duration::from_millis(1 + arg as u64 % 8),
                        read,
                    )
                    .await
                    {
                        Ok((Ok(n), buf)) => state.borrow_mut().check_read(s, &buf[..n]),
                        Ok((Err(_), _)) => {}
                        Err(_) => state.borrow_mut().streams[s].aborted_reads += 1,
                    }
                }
            }
            // The runtime ends here, everything in flight.
            _ => return Ok(()),
        }
    }
    // A clean end: abort what is left, and every op slot must come back.
    for task in slots.iter_mut().filter_map(Option::take) {
        task.abort();
    }
    // Up to 2 s in real time: a virtual sleep turns the loop, but the paused
    // clock does not wait for a cancel in flight (it jumps when no op
    // completes on its own), so on a busy machine it could pass before the
    // kernel answers.
    for round in 0..2000 {
        if percore_runtime::stats().in_flight == 0 {
            return Ok(());
        }
        if round >= 16 {
            std::thread::sleep(Duration::from_millis(1));
        }
        percore_runtime::time::sleep(Duration::from_millis(1)).await;
    }
    Err(format!(
        "{} ops still in flight after every task ended",
        percore_runtime::stats().in_flight
    ))
}

fn start_read(slots: &mut Slots, fds: &Rc<Fds>, state: &Rc<RefCell<State>>, s: usize, len: usize) {
    if slots[2 * s]
        .as_ref()
        .is_some_and(|task| !task.is_finished())
    {
        return;
    }
    let (fds, state) = (Rc::clone(fds), Rc::clone(state));
    slots[2 * s] = Some(spawn(async move {
        let fd = fds.streams[s].0.as_raw_fd();
        let (res, buf) = Op::new(Read::new(fd, Vec::with_capacity(len), u64::MAX)).await;
        if let Ok(n) = res {
            state.borrow_mut().check_read(s, &buf[..n]);
        }
    }));
}

fn start_write(slots: &mut Slots, fds: &Rc<Fds>, state: &Rc<RefCell<State>>, s: usize, len: usize) {
    if slots[2 * s + 1]
        .as_ref()
        .is_some_and(|task| !task.is_finished())
    {
        return;
    }
    let (fds, state) = (Rc::clone(fds), Rc::clone(state));
    slots[2 * s + 1] = Some(spawn(async move {
        let fd = fds.streams[s].1.as_raw_fd();
        let from = state.borrow().streams[s].written;
        let data: Vec<u8> = (from..from + len).map(byte).collect();
        let (res, _) = Op::new(Write::new(fd, data, u64::MAX)).await;
        if let Ok(n) = res {
            state.borrow_mut().streams[s].written += n;
        }
    }));
}

fn start_file(
    slots: &mut Slots,
    fds: &Rc<Fds>,
    state: &Rc<RefCell<State>>,
    arg: usize,
    write: bool,
) {
    let slot = if write { 5 } else { 4 };
    if slots[slot].as_ref().is_some_and(|task| !task.is_finished()) {
        return;
    }
    let (fds, state) = (Rc::clone(fds), Rc::clone(state));
    let pos = (arg % FILE_BLOCKS) * FILE_BLOCK + arg / FILE_BLOCKS;
    slots[slot] = Some(spawn(async move {
        let fd = fds.file.as_raw_fd();
        if write {
            let data: Vec<u8> = (pos..pos + FILE_BLOCK / 2).map(file_byte).collect();
            let _ = Op::new(Write::new(fd, data, pos as u64)).await;
            return;
        }
        let (res, buf) = Op::new(Read::new(fd, Vec::with_capacity(FILE_BLOCK), pos as u64)).await;
        if let Ok(n) = res {
            let wrong = buf[..n]
                .iter()
                .enumerate()
                .find(|(i, b)| **b != 0 && **b != file_byte(pos + i));
            if let Some((i, b)) = wrong {
                state.borrow_mut().failures.push(format!(
                    "file byte {} is {b}, neither 0 nor what was written there",
                    pos + i
                ));
            }
        }
    }));
}
