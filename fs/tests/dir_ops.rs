//! Every directory and name operation, checked against the filesystem with std.

mod util;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;

use futures_util::StreamExt;

#[test]
fn create_and_remove_dirs() {
    let dir = util::TempDir::new("dirs");
    percore_runtime::run(async {
        let a = dir.join("a");
        percore_fs::create_dir(&a).await.unwrap();
        assert!(std::fs::metadata(&a).unwrap().is_dir());
        let err = percore_fs::create_dir(&a).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);

        let deep = dir.join("b/c/d/e");
        percore_fs::create_dir_all(&deep).await.unwrap();
        assert!(std::fs::metadata(&deep).unwrap().is_dir());
        percore_fs::create_dir_all(&deep).await.unwrap(); // already there: fine
        percore_fs::create_dir_all(dir.join("b/c/x")).await.unwrap();
        assert!(dir.join("b/c/x").is_dir());

        std::fs::write(dir.join("file"), b"x").unwrap();
        let err = percore_fs::create_dir_all(dir.join("file/sub"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
        let err = percore_fs::create_dir_all(dir.join("file"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);

        let err = percore_fs::remove_dir(dir.join("b/c")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
        percore_fs::remove_dir(&deep).await.unwrap();
        assert!(!deep.exists());
        let err = percore_fs::remove_dir(dir.join("file")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory);
    })
    .unwrap();
}

#[test]
fn remove_rename_and_link_files() {
    let dir = util::TempDir::new("names");
    percore_runtime::run(async {
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, b"first").unwrap();
        std::fs::write(&b, b"second").unwrap();

        // rename replaces the target
        percore_fs::rename(&a, &b).await.unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"first");

        // hard link: same inode, two links
        let hard = dir.join("hard");
        percore_fs::hard_link(&b, &hard).await.unwrap();
        let (mb, mh) = (
            std::fs::metadata(&b).unwrap(),
            std::fs::metadata(&hard).unwrap(),
        );
        assert_eq!(mb.ino(), mh.ino());
        assert_eq!(mh.nlink(), 2);
        let err = percore_fs::hard_link(&b, &hard).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);

        // symlink: points at its target, which need not exist
        let soft = dir.join("soft");
        percore_fs::symlink("b", &soft).await.unwrap();
        assert_eq!(
            std::fs::read_link(&soft).unwrap(),
            std::path::Path::new("b")
        );
        assert_eq!(
            percore_fs::read_link(&soft).await.unwrap(),
            std::path::Path::new("b")
        );
        assert_eq!(std::fs::read(&soft).unwrap(), b"first");
        percore_fs::symlink(dir.join("nowhere"), dir.join("dangling"))
            .await
            .unwrap();
        assert!(std::fs::symlink_metadata(dir.join("dangling"))
            .unwrap()
            .is_symlink());

        // remove_file removes a name, not the inode
        percore_fs::remove_file(&b).await.unwrap();
        assert!(!b.exists());
        assert_eq!(std::fs::read(&hard).unwrap(), b"first");
        assert_eq!(std::fs::metadata(&hard).unwrap().nlink(), 1);
        percore_fs::remove_file(&soft).await.unwrap();
        assert!(std::fs::symlink_metadata(&soft).is_err());
        let err = percore_fs::remove_file(dir.path()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
    })
    .unwrap();
}

#[test]
fn read_dir_lists_what_std_lists() {
    let dir = util::TempDir::new("read-dir");
    // More entries than one batch, to cross the batch boundary.
    for i in 0..300 {
        std::fs::write(dir.join(&format!("f{i:03}")), b"").unwrap();
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("f000", dir.join("link")).unwrap();
    let expected: BTreeSet<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    percore_runtime::run(async {
        let mut entries = percore_fs::read_dir(dir.path()).await.unwrap();
        let mut names = BTreeSet::new();
        while let Some(entry) = entries.next().await {
            let entry = entry.unwrap();
            let std_meta = std::fs::symlink_metadata(entry.path()).unwrap();
            assert_eq!(
                entry.file_type(),
                std_meta.file_type(),
                "{:?}",
                entry.path()
            );
            assert_eq!(entry.ino(), std_meta.ino());
            assert_eq!(entry.metadata().await.unwrap().ino(), std_meta.ino());
            assert_eq!(entry.path(), dir.path().join(entry.file_name()));
            assert!(names.insert(entry.file_name()), "listed twice");
        }
        assert_eq!(names, expected);
        assert_eq!(names.len(), 302);
        assert!(entries.next().await.is_none(), "stays ended");

        let err = percore_fs::read_dir(dir.join("f000")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory);
        assert!(err.to_string().contains("f000"));
    })
    .unwrap();
}
