//! An HTTP client: fetches a URL with the percore-http client and prints the
//! status line, the headers, a blank line, then the body
//! (`percore_examples::fetch`). HTTP/1.1, HTTP/2 with `--http2` (h2c) or by
//! ALPN over `https://`, whose certificates are checked against the
//! system's CA store (or `--cacert FILE`).
//!
//! Exits 0 once the whole answer is printed (whatever its status), 1 with a
//! message on stderr if the command line is wrong or the fetch fails.
//!
//! `cargo run -p percore-examples --example fetch -- https://example.com/`

use std::io::{self, Write};
use std::process::ExitCode;

use percore_examples::fetch::{fetch, parse, Command, FetchError, USAGE};

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Command::Fetch(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("fetch: {message}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let fetched = percore::run(async move { fetch(&options, io::stdout()).await });
    let failed = match fetched {
        Ok(Ok(_stdout)) => return ExitCode::SUCCESS,
        // `fetch URL | head`: the reader has what it wanted.
        Ok(Err(FetchError::Output(err))) if err.kind() == io::ErrorKind::BrokenPipe => {
            return ExitCode::SUCCESS
        }
        Ok(Err(err)) => err.to_string(),
        Err(err) => format!("starting the runtime: {err}"),
    };
    let _ = io::stdout().flush();
    eprintln!("fetch: {failed}");
    ExitCode::FAILURE
}
