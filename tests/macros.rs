//! `#[percore::test]` expands to working tests in each supported shape.
//! (`#[percore::main]` can't be exercised from a test file: it defines the
//! crate's `main`. The examples and the facade's doctests cover it.)

use std::io;

#[percore::test]
async fn unit_return() {
    let answer = async { 6 * 7 }.await;
    assert_eq!(answer, 42);
}

/// A `Result` return type must survive the expansion, and `?` inside the body
/// must still infer its error type from it.
#[percore::test]
async fn result_return_with_question_mark() -> Result<(), io::Error> {
    let n: u32 = async { Ok::<_, io::Error>(7) }.await?;
    assert_eq!(n, 7);
    Ok(())
}

#[percore::test(cores = 2)]
async fn on_two_cores() {
    // The output crosses from core 0 back to the test thread.
    let text = async { String::from("core 0") }.await;
    assert_eq!(text, "core 0");
}

// Other attributes stay on the generated `#[test]` fn.
#[percore::test]
#[should_panic(expected = "boom")]
async fn should_panic_is_kept() {
    panic!("boom");
}

#[percore::test(start_paused = true)]
async fn start_paused_runs_an_hour_at_once() {
    let start = percore::time::Instant::now();
    percore::time::sleep(std::time::Duration::from_secs(3600)).await;
    assert_eq!(start.elapsed(), std::time::Duration::from_secs(3600));
}

#[percore::test(cores = 2, start_paused = true, seed = 5)]
async fn all_three_keys_together() {
    let start = percore::time::Instant::now();
    percore::time::sleep(std::time::Duration::from_secs(60)).await;
    assert_eq!(start.elapsed(), std::time::Duration::from_secs(60));
}

/// Set in the child processes of `the_seed_is_printed_when_a_test_fails`.
const FAIL_ON_PURPOSE: &str = "PERCORE_MACROS_FAIL_ON_PURPOSE";

/// Fails only when run as a child of the test below.
#[percore::test(seed = 99)]
async fn panics_when_asked() {
    if std::env::var_os(FAIL_ON_PURPOSE).is_some() {
        panic!("failing on purpose");
    }
}

/// Fails only when run as a child of the test below.
#[percore::test]
async fn returns_err_when_asked() -> Result<(), io::Error> {
    if std::env::var_os(FAIL_ON_PURPOSE).is_some() {
        return Err(io::Error::other("failing on purpose"));
    }
    Ok(())
}

/// Runs one test of this binary in a child process; its status and stderr.
fn run_child(test: &str, seed: Option<&str>) -> (bool, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(FAIL_ON_PURPOSE, "1")
        .env_remove("PERCORE_SEED");
    if let Some(seed) = seed {
        command.env("PERCORE_SEED", seed);
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_seed_is_printed_when_a_test_fails() {
    let (ok, stderr) = run_child("panics_when_asked", None);
    assert!(!ok, "the child test failed");
    assert!(stderr.contains("PERCORE_SEED=99"), "{stderr}");

    let (ok, stderr) = run_child("returns_err_when_asked", Some("1234"));
    assert!(!ok, "the child test failed");
    assert!(stderr.contains("PERCORE_SEED=1234"), "{stderr}");

    let (ok, stderr) = run_child("returns_err_when_asked", Some("not-a-number"));
    assert!(!ok);
    assert!(stderr.contains("is not a seed"), "{stderr}");
}
