//! The `fetch` example: its command line, and fetching one URL with the
//! percore-http client — the status line, the headers, a blank line, then
//! the body as it arrives.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use percore::http::client::Client;
use percore::http::tls::TlsConnector;

/// What `fetch --help` prints.
pub const USAGE: &str = "\
usage: fetch [--http2] [--cacert FILE] [--timeout SECONDS] URL

Fetches URL (http:// or https://) and prints the status line, the headers,
a blank line, then the body. Redirects are followed (up to 10).

  --http2            speak HTTP/2 to http:// URLs (h2c, prior knowledge);
                     over https:// the server chooses by ALPN
  --cacert FILE      trust only the CA certificates of this PEM file
                     (default: the system's CA store)
  --timeout SECONDS  give up after this long, the body included
                     (default: none; connecting gives up after 10 s)
  -h, --help         print this and exit";

/// How long connecting (the name's lookup included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Fetch a URL.
    Fetch(Options),
    /// Print [`USAGE`].
    Help,
}

/// How to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// What to fetch.
    pub url: String,
    /// HTTP/2 with prior knowledge for `http://` URLs.
    pub http2: bool,
    /// The CA certificates to trust instead of the system's.
    pub cacert: Option<PathBuf>,
    /// The limit on the whole request, body included.
    pub timeout: Option<Duration>,
}

/// Reads the command line (without the program name).
///
/// # Errors
///
/// A message saying what is wrong: an unknown flag, a flag without its
/// value, no URL or two.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut url = None;
    let mut options = Options {
        url: String::new(),
        http2: false,
        cacert: None,
        timeout: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--http2" => options.http2 = true,
            "--cacert" => {
                let file = args.next().ok_or("--cacert needs a file")?;
                options.cacert = Some(PathBuf::from(file));
            }
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a number of seconds")?;
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| format!("--timeout {value:?}: not a number of seconds"))?;
                let limit = Duration::try_from_secs_f64(seconds)
                    .ok()
                    .filter(|limit| !limit.is_zero())
                    .ok_or_else(|| format!("--timeout {value:?}: more than 0 seconds"))?;
                options.timeout = Some(limit);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag:?}")),
            _ if url.is_some() => return Err(format!("one URL only ({arg:?} is a second)")),
            _ => url = Some(arg),
        }
    }
    options.url = url.ok_or("no URL given")?;
    Ok(Command::Fetch(options))
}

/// Why [`fetch`] failed.
#[derive(Debug)]
pub enum FetchError {
    /// The CA file could not be read, or the request or its body failed.
    Fetch(io::Error),
    /// The answer could not be written out (`BrokenPipe`: its reader left).
    Output(io::Error),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Fetch(err) => write!(f, "{err}"),
            FetchError::Output(err) => write!(f, "writing the answer out: {err}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Fetch(err) | FetchError::Output(err) => Some(err),
        }
    }
}

/// Fetches `options.url` and writes the answer to `out`: the status line
/// (`HTTP/1.1 200 OK`), one `name: value` line per header, a blank line,
/// then the body, written as it arrives. Any status is an answer: a 404 is
/// printed, not an error. `out` is written on the blocking pool (a slow
/// reader of a pipe must not stall the core) and given back at the end.
///
/// # Errors
///
/// The CA file cannot be read; the request fails (the client's message:
/// what failed, for which URL, and why); the body breaks off; `out`
/// cannot be written.
pub async fn fetch<W: Write + Send + 'static>(options: &Options, out: W) -> Result<W, FetchError> {
    let mut builder = Client::builder().connect_timeout(CONNECT_TIMEOUT);
    if options.http2 {
        builder = builder.http2_prior_knowledge();
    }
    if let Some(limit) = options.timeout {
        builder = builder.timeout(limit);
    }
    if let Some(file) = &options.cacert {
        let connector = TlsConnector::from_ca_pem_file(file).map_err(|err| {
            FetchError::Fetch(io::Error::new(err.kind(), format!("--cacert: {err}")))
        })?;
        builder = builder.tls_connector(connector);
    }
    let client = builder.build();
    let failed = |err: percore::http::client::Error| FetchError::Fetch(err.into());
    let mut response = client
        .get(options.url.as_str())
        .send()
        .await
        .map_err(failed)?;
    let mut head = format!("{:?} {}\n", response.version(), response.status());
    for (name, value) in response.headers() {
        head.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    head.push('\n');
    let mut out = write_out(out, Bytes::from(head)).await?;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        out = write_out(out, chunk).await?;
    }
    write_out(out, Bytes::new()).await
}

/// Writes `bytes` to `out` and flushes it, on the blocking pool.
async fn write_out<W: Write + Send + 'static>(mut out: W, bytes: Bytes) -> Result<W, FetchError> {
    let written = percore::spawn_blocking(move || {
        out.write_all(&bytes)?;
        out.flush()?;
        Ok(out)
    })
    .await;
    match written {
        Ok(written) => written.map_err(FetchError::Output),
        Err(err) => Err(FetchError::Output(io::Error::other(format!(
            "the blocking pool: {err}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_and_the_url_parse() {
        let Ok(Command::Fetch(options)) = parse(args(
            "--http2 --cacert ca.pem --timeout 2.5 http://localhost/",
        )) else {
            panic!("a fetch");
        };
        assert_eq!(
            options,
            Options {
                url: "http://localhost/".into(),
                http2: true,
                cacert: Some("ca.pem".into()),
                timeout: Some(Duration::from_millis(2500)),
            }
        );
        assert_eq!(parse(args("-h")), Ok(Command::Help));
        assert_eq!(parse(args("http://a/ --help")), Ok(Command::Help));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        for (line, says) in [
            ("", "no URL"),
            ("--http2", "no URL"),
            ("--cacert", "needs a file"),
            ("--timeout x http://a/", "not a number"),
            ("--timeout 0 http://a/", "more than 0"),
            ("--timeout -1 http://a/", "more than 0"),
            ("--insecure http://a/", "unknown flag"),
            ("http://a/ http://b/", "one URL only"),
        ] {
            let err = parse(args(line)).expect_err(line);
            assert!(err.contains(says), "{line:?}: {err:?}");
        }
    }
}
