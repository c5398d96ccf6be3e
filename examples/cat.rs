//! `cat FILE...`: print files to standard output with percore::fs.
//!
//! `cargo run -p percore-examples --example cat -- Cargo.toml README.md`

use std::io;
use std::os::fd::AsFd;
use std::process::ExitCode;

use percore::fs::File;
use percore::IoBuf;

/// Bytes per read.
const CHUNK: usize = 64 << 10;

/// Offset that means "the file's current position": what a pipe or terminal
/// needs, and what appends to a redirected file.
const CURRENT: u64 = u64::MAX;

/// Writes all of `buf` to `out` at its current position, looping on short writes.
async fn write_all(out: &File, buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut done = 0;
    let mut buf = buf;
    while done < buf.len() {
        let (res, slice) = out.write_at(buf.slice(done..), CURRENT).await;
        buf = slice.into_inner();
        match res? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "stdout took 0 bytes",
                ))
            }
            n => done += n,
        }
    }
    Ok(buf)
}

async fn cat(paths: &[String]) -> io::Result<()> {
    // Our own handle on fd 1, so closing it leaves the process's stdout alone.
    let stdout = File::from_std(std::fs::File::from(
        io::stdout().as_fd().try_clone_to_owned()?,
    ));
    let mut buf = Vec::with_capacity(CHUNK);
    for path in paths {
        let file = File::open(path).await?;
        let mut pos = 0;
        loop {
            let (res, filled) = file.read_at(buf, pos).await;
            buf = filled;
            let n = res?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            buf = write_all(&stdout, buf).await?;
            buf.clear();
        }
        file.close().await?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: cat FILE...");
        return ExitCode::from(2);
    }
    match percore::run(cat(&paths)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) | Err(err) => {
            eprintln!("cat: {err}");
            ExitCode::FAILURE
        }
    }
}
