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
