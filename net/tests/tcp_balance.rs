//! `Balance`: connections accepted on one core and handed to another are
//! served there; the table follows connections as they close; nothing leaks
//! when the target core stops taking connections, is full, or shuts down
//! with connections still queued for it.
//!
//! Every client connects to core 0's listener (core 1's is bound on a port
//! of its own that nobody uses), and keeps its connection open while the
//! next one connects, so each placement is decided on known counts.

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore_net::balance::{Balance, Balanced};
use percore_net::TcpListener;
use percore_runtime::{RemoteJoinHandle, Runtime};

/// Tests here count the process's fds; they must not overlap.
static FDS: Mutex<()> = Mutex::new(());

/// Serves every connection of `incoming` on this core: one byte in, the
/// core's number back, then echo until end of stream.
async fn serve(mut incoming: Balanced) {
    while let Some(stream) = incoming.next().await {
        let Ok(stream) = stream else { continue };
        drop(percore_runtime::spawn(async move {
            let (res, _) = stream.read_exact(Vec::with_capacity(1)).await;
            if res.is_err() {
                return;
            }
            let core = vec![b'0' + percore_runtime::current_core() as u8];
            if stream.write_all(core).await.0.is_err() {
                return;
            }
            let _ = util::echo(stream).await;
        }));
    }
}

/// Starts a balanced server on both cores of `runtime`; core `i` serves only
/// if `serving[i]` (otherwise it registers and never polls its stream).
/// Returns core 0's address and each core's accept task.
fn start(
    runtime: &Runtime,
    balance: &Balance,
    serving: [bool; 2],
) -> (SocketAddr, Vec<RemoteJoinHandle<()>>) {
    let mut addr = None;
    let mut tasks = Vec::new();
    for (core, serves) in serving.into_iter().enumerate() {
        let listener = util::std_listener();
        addr.get_or_insert(listener.local_addr().expect("local_addr"));
        let balance = balance.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let task = runtime
            .spawn_on(core, move || async move {
                let listener = TcpListener::from_std(listener);
                let incoming = balance.incoming(&listener).expect("core in the table");
                ready_tx.send(()).expect("test waits");
                if serves {
                    serve(incoming).await;
                } else {
                    // Registered, never taking what is handed here.
                    std::future::pending::<()>().await;
                    drop(incoming);
                }
            })
            .expect("spawn_on");
        ready_rx.recv().expect("core registered");
        tasks.push(task);
    }
    (addr.expect("two listeners"), tasks)
}

/// Connects, sends one byte and reads the number of the core serving it.
fn connect(addr: SocketAddr) -> (std::net::TcpStream, u8) {
    let mut client = std::net::TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    client.write_all(b"?").expect("write");
    let mut core = [0];
    client
        .read_exact(&mut core)
        .expect("the serving core's number");
    (client, core[0] - b'0')
}

/// Waits (a bounded number of tries) until `balance.live()` is `want`.
fn wait_for_live(balance: &Balance, want: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while balance.live() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(balance.live(), want, "connections counted per core");
}

#[test]
fn connections_alternate_and_are_served_on_the_core_they_were_handed_to() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = util::open_fds();
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let balance = Balance::new(2).margin(0);
    let (addr, _tasks) = start(&runtime, &balance, [true, true]);

    let mut clients = Vec::new();
    let mut cores = Vec::new();
    for _ in 0..8 {
        let (client, core) = connect(addr);
        clients.push(client);
        cores.push(core);
    }
    assert_eq!(cores, [0, 1, 0, 1, 0, 1, 0, 1]);
    assert_eq!(balance.live(), [4, 4]);
    assert_eq!(balance.handoffs(), 4);

    // A handed connection is a whole connection: it echoes on its core.
    for (i, client) in clients.iter_mut().enumerate() {
        let message = format!("message {i}");
        client.write_all(message.as_bytes()).unwrap();
        let mut back = vec![0; message.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, message.as_bytes());
    }

    // Closing core 1's connections frees its seats; the next connections go
    // there until the counts are level again.
    for client in clients.iter().skip(1).step_by(2) {
        client.shutdown(std::net::Shutdown::Both).unwrap();
    }
    clients = clients.into_iter().step_by(2).collect();
    wait_for_live(&balance, &[4, 0]);
    for _ in 0..4 {
        let (client, core) = connect(addr);
        assert_eq!(core, 1, "core 1 serves fewer");
        clients.push(client);
    }
    assert_eq!(balance.live(), [4, 4]);

    drop(clients);
    wait_for_live(&balance, &[0, 0]);
    drop(runtime);
    assert_eq!(util::open_fds(), fds_before, "fd delta");
}

#[test]
fn a_core_that_stopped_taking_connections_gets_none() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = util::open_fds();
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let balance = Balance::new(2).margin(0);
    let (addr, mut tasks) = start(&runtime, &balance, [true, true]);
    let (first, core) = connect(addr);
    assert_eq!(core, 0);
    let (second, core) = connect(addr);
    assert_eq!(core, 1);

    // Core 1's accept loop ends (its server shuts down), dropping its
    // stream: its connection lives on, and every new one stays on core 0.
    let accept_1 = tasks.pop().expect("core 1's task");
    accept_1.abort();
    let ended = runtime.run_on(0, move || accept_1).unwrap();
    assert!(ended.unwrap_err().is_cancelled());
    let mut clients = vec![first, second];
    for _ in 0..4 {
        let (client, core) = connect(addr);
        assert_eq!(core, 0, "core 1 takes no connections");
        clients.push(client);
    }
    assert_eq!(balance.live(), [5, 1]);
    assert_eq!(balance.handoffs(), 1);

    drop(clients);
    wait_for_live(&balance, &[0, 0]);
    drop(runtime);
    assert_eq!(util::open_fds(), fds_before, "fd delta");
}

#[test]
fn a_full_queue_keeps_the_connection_and_a_stopped_core_closes_its_queue() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = util::open_fds();
    let runtime = Runtime::builder().cores(2).build().unwrap();
    // Core 1 registers but never takes anything; its queue holds one.
    let balance = Balance::new(2).margin(0).queue(1);
    let (addr, _tasks) = start(&runtime, &balance, [true, false]);

    let (first, core) = connect(addr);
    assert_eq!(core, 0);
    // Handed to core 1 and left in its queue: no answer, but counted there.
    let mut queued = std::net::TcpStream::connect(addr).unwrap();
    queued.write_all(b"?").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while balance.handoffs() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(balance.handoffs(), 1);
    assert_eq!(balance.live(), [1, 1]);
    // Level: the next one stays on core 0.
    let (third, core) = connect(addr);
    assert_eq!(core, 0);
    assert_eq!(balance.live(), [2, 1]);
    // Core 1 serves fewer, but its queue is full: core 0 serves this one itself.
    let (fourth, core) = connect(addr);
    assert_eq!(core, 0, "full queue: served where accepted");
    assert_eq!(balance.live(), [3, 1]);
    assert_eq!(balance.handoffs(), 1);

    // The runtime stops with a connection queued for core 1: it is closed,
    // never served, never leaked.
    drop(runtime);
    queued
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut byte = [0];
    let read = queued.read(&mut byte);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the queued connection is closed: {read:?}"
    );
    assert_eq!(balance.live(), [0, 0]);
    drop((first, queued, third, fourth));
    assert_eq!(util::open_fds(), fds_before, "fd delta");
}

#[test]
fn a_core_beyond_the_table_is_refused() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let balance = Balance::new(1);
    let err = runtime
        .run_on(1, move || async move {
            let listener = TcpListener::from_std(util::std_listener());
            balance.incoming(&listener).map(drop).unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("core 1"), "{err}");
}
