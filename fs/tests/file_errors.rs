//! Errors name the path: ENOENT, EACCES, EISDIR, ENOSPC and the rest.

mod util;

use std::io::ErrorKind;
use std::os::unix::process::CommandExt;

use percore_fs::{raw_os_error, File, OpenOptions, PathError};

fn assert_names(err: &std::io::Error, path: &str, errno: i32) {
    assert!(err.to_string().contains(path), "{err} should name {path}");
    assert_eq!(raw_os_error(err), Some(errno), "{err}");
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<PathError>());
    assert_eq!(
        inner.map(|e| e.path().display().to_string()),
        Some(path.to_string())
    );
}

#[test]
fn enoent_names_the_path() {
    percore_runtime::run(async {
        let err = File::open("/no/such/dir/file").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_names(&err, "/no/such/dir/file", libc::ENOENT);
        let err = percore_fs::metadata("/no/such").await.unwrap_err();
        assert_names(&err, "/no/such", libc::ENOENT);
        let err = percore_fs::remove_dir("/no/such").await.unwrap_err();
        assert_names(&err, "/no/such", libc::ENOENT);
        let err = percore_fs::rename("/no/such", "/tmp/x").await.unwrap_err();
        assert!(err.to_string().contains("/no/such -> /tmp/x"), "{err}");
    })
    .unwrap();
}

#[test]
fn eisdir_names_the_path() {
    let dir = util::TempDir::new("eisdir");
    let path = dir.path().to_str().unwrap().to_string();
    percore_runtime::run(async {
        let err = OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        assert_names(&err, &path, libc::EISDIR);
        // Reading a directory fd fails at the read, which names it too.
        let file = File::open(&path).await.unwrap();
        let (res, _) = file.read_at(Vec::with_capacity(16), 0).await;
        assert_names(&res.unwrap_err(), &path, libc::EISDIR);
    })
    .unwrap();
}

#[test]
fn enospc_names_the_path() {
    percore_runtime::run(async {
        let file = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        let (res, _) = file.write_at(vec![1u8; 16], 0).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull);
        assert_names(&err, "/dev/full", libc::ENOSPC);
        let (res, _) = file.write_all_at(vec![1u8; 16], 0).await;
        assert_names(&res.unwrap_err(), "/dev/full", libc::ENOSPC);
    })
    .unwrap();
}

#[test]
fn misuse_is_explained_and_named() {
    let dir = util::TempDir::new("misuse");
    let path = dir.join("short");
    std::fs::write(&path, b"abc").unwrap();
    percore_runtime::run(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.read_exact_at(Vec::with_capacity(10), 0).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("short"), "{err}");
        assert_eq!(buf, b"abc");
        let (res, _) = file.write_at(b"x".to_vec(), 0).await;
        assert_eq!(raw_os_error(&res.unwrap_err()), Some(libc::EBADF));
        let err = File::create_new(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    })
    .unwrap();
}

/// Set in the child process that runs `eacces_names_the_path` as nobody.
const AS_NOBODY: &str = "PERCORE_FS_TEST_AS_NOBODY";

#[test]
fn eacces_names_the_path() {
    // Root passes every permission check, so the check runs in a child process
    // of this test binary with uid/gid 65534 ("nobody").
    if let Ok(path) = std::env::var(AS_NOBODY) {
        percore_runtime::run(async {
            let err = File::open(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied);
            assert_names(&err, &path, libc::EACCES);
        })
        .unwrap();
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to uid 65534 needs root");
        return;
    }
    let dir = util::TempDir::new("eacces");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, b"x").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "eacces_names_the_path", "--nocapture"])
        .env(AS_NOBODY, &path)
        .uid(65534)
        .gid(65534)
        .status();
    match status {
        Ok(status) => assert!(status.success(), "the check as nobody failed: {status}"),
        // The test binary itself is out of nobody's reach (a private target dir).
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {
            eprintln!("skipped: uid 65534 cannot run this test binary: {err}")
        }
        Err(err) => panic!("could not run the check as nobody: {err}"),
    }
}
