//! The fault layer (`Builder::faults`, `PERCORE_FAULTS`): each fault happens
//! when asked for, and what it breaks is what a correct caller can handle —
//! the data stays right, nothing leaks, the runtime still shuts down. The
//! tests take turns (`util::serial`): one of them counts the process's fds.

mod util;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use percore_runtime::op::{Nop, Read, Write};
use percore_runtime::{spawn, Builder, Driver, Op};

fn faulty(spec: &str) -> Builder {
    Builder::new().stall_threshold(None).faults(spec).unwrap()
}

/// The bytes of a test stream: position `i` holds this.
fn byte(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Writes all of `data` to `fd` with `Write` ops, looping on short writes;
/// returns how many ops it took.
async fn write_all(fd: &OwnedFd, data: &[u8]) -> usize {
    let (mut done, mut ops) = (0, 0);
    while done < data.len() {
        let (n, _) = Op::new(Write::new(fd.as_raw_fd(), data[done..].to_vec(), u64::MAX)).await;
        done += n.unwrap();
        ops += 1;
    }
    ops
}

/// Reads exactly `len` bytes from `fd` with `Read` ops of up to 4 KiB.
async fn read_exact(fd: &OwnedFd, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let want = (len - out.len()).min(4096);
        let (n, buf) = Op::new(Read::new(
            fd.as_raw_fd(),
            Vec::with_capacity(want),
            u64::MAX,
        ))
        .await;
        assert!(
            n.unwrap() > 0,
            "end of stream after {} of {len} bytes",
            out.len()
        );
        out.extend_from_slice(&buf);
    }
    out
}

#[test]
fn eintr_is_submitted_again_and_other_errnos_reach_the_caller() {
    let _serial = util::serial();
    faulty("seed=11,eintr=0.5@other")
        .block_on(async {
            for _ in 0..1000 {
                assert_eq!(Op::new(Nop::new()).await.unwrap(), 0);
            }
            let faults = percore_runtime::stats().faults;
            assert!(
                faults > 300,
                "about 1000 EINTRs expected, {faults} injected"
            );
        })
        .unwrap();
    faulty("seed=12,eio=0.3@other")
        .block_on(async {
            let mut failed = 0;
            for _ in 0..1000 {
                match Op::new(Nop::new()).await {
                    Ok(0) => {}
                    Err(err) if err.raw_os_error() == Some(libc::EIO) => failed += 1,
                    other => panic!("a nop gave {other:?}"),
                }
            }
            assert_eq!(
                failed,
                percore_runtime::stats().faults,
                "every injected EIO reached its caller"
            );
            assert!((150..450).contains(&failed), "{failed} of 1000 at p = 0.3");
        })
        .unwrap();
}

#[test]
fn short_reads_and_writes_move_real_bytes() {
    let _serial = util::serial();
    let data: Vec<u8> = (0..256 * 1024).map(byte).collect();
    let expected = data.clone();
    faulty("seed=3,short=1.0")
        .block_on(async move {
            let (rx, tx) = util::pipe();
            let reader = spawn(async move { read_exact(&rx, 256 * 1024).await });
            let writes = write_all(&tx, &data).await;
            let got = reader.await.unwrap();
            assert!(
                got == expected,
                "the bytes read are the bytes written, in order"
            );
            assert!(writes > 1, "writes were cut short");
            assert!(percore_runtime::stats().faults > writes as u64);
        })
        .unwrap();
}

#[test]
fn held_completions_keep_their_order_and_a_paused_clock_waits_for_them() {
    let _serial = util::serial();
    faulty("seed=5,delay=1.0/20")
        .start_paused(true)
        .block_on(async {
            let (rx, tx) = util::pipe();
            let data: Vec<u8> = (0..64 * 1024).map(byte).collect();
            util::write_fd(&tx, &data[..32 * 1024]);
            // Completed at once by the kernel, held for up to 20 turns: a
            // paused clock must not jump to the deadline meanwhile.
            let first = percore_runtime::time::timeout(
                Duration::from_secs(3600),
                read_exact(&rx, 32 * 1024),
            )
            .await
            .expect("the clock jumped past a held completion");
            let writer = async {
                write_all(&tx, &data[32 * 1024..]).await;
                Vec::new()
            };
            let both = join_all(vec![
                Box::pin(read_exact(&rx, 32 * 1024))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>>>>,
                Box::pin(writer),
            ])
            .await;
            let second = &both[0];
            assert!(first == data[..32 * 1024] && *second == data[32 * 1024..]);
            assert!(
                percore_runtime::stats().faults >= 16,
                "completions were held"
            );
        })
        .unwrap();
}

#[test]
fn failed_submits_and_tiny_rings_lose_no_op() {
    let _serial = util::serial();
    faulty("seed=9,submit=0.3,sq=4,cq=8")
        .block_on(async {
            let nops = (0..10_000).map(|_| spawn(Op::new(Nop::new())));
            for result in join_all(nops).await {
                assert_eq!(result.unwrap().unwrap(), 0);
            }
            let pipes: Vec<_> = (0..64).map(|_| util::pipe()).collect();
            let reads = join_all(pipes.iter().enumerate().map(|(i, (rx, tx))| async move {
                util::write_fd(tx, &[i as u8; 8]);
                read_exact(rx, 8).await
            }));
            for (i, got) in reads.await.into_iter().enumerate() {
                assert_eq!(got, [i as u8; 8]);
            }
            let stats = percore_runtime::stats();
            assert_eq!(stats.in_flight, 0);
            if stats.driver == Driver::IoUring {
                assert!(stats.faults > 0 && stats.sq_full > 0, "{stats:?}");
            }
        })
        .unwrap();
}

#[test]
fn a_runtime_dropped_with_completions_held_returns_and_leaks_no_fd() {
    let _serial = util::serial();
    let before = util::fd_count();
    let started = Instant::now();
    faulty("seed=2,delay=1.0/1000000")
        .block_on(async {
            for _ in 0..100 {
                let (rx, tx) = util::pipe();
                util::write_fd(&tx, b"held");
                drop(spawn(async move { read_exact(&rx, 4).await }));
            }
            // Let the reads complete in the kernel; their completions stay held.
            for _ in 0..1000 {
                if percore_runtime::stats().faults >= 100 {
                    break;
                }
                percore_runtime::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                percore_runtime::stats().faults,
                100,
                "every read's completion is held"
            );
        })
        .unwrap();
    // Shutdown hands the held completions over at once; waiting for them
    // would take a million turns, and `DRAIN_LIMIT` (5 s) means it leaked.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(util::fd_count(), before);
}

/// `PERCORE_FAULTS` reaches every runtime that names no spec of its own; a
/// run without it injects nothing.
#[test]
fn the_environment_spec_applies_to_every_runtime() {
    let _serial = util::serial();
    let active = std::env::var("PERCORE_FAULTS").is_ok_and(|spec| spec != "none");
    let (faults, errors) = Builder::new()
        .block_on(async {
            let (rx, tx) = util::pipe();
            let mut errors = 0;
            for i in 0..2000 {
                if Op::new(Nop::new()).await.is_err() {
                    errors += 1;
                }
                if i % 4 == 0 {
                    write_all(&tx, &[1; 64]).await;
                    read_exact(&rx, 64).await;
                }
            }
            (percore_runtime::stats().faults, errors)
        })
        .unwrap();
    if active {
        assert!(
            faults > 0,
            "PERCORE_FAULTS is set, yet nothing was injected"
        );
    } else {
        assert_eq!((faults, errors), (0, 0));
    }
}
