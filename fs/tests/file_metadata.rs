//! `metadata` (statx) agrees with `std::fs::metadata`.

mod util;

use std::os::unix::fs::MetadataExt;

#[test]
fn metadata_agrees_with_std() {
    let dir = util::TempDir::new("metadata");
    let file_path = dir.join("file");
    std::fs::write(&file_path, vec![3u8; 12345]).unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&file_path, &link).unwrap();
    percore_runtime::run(async {
        for path in [file_path.clone(), dir.path().to_path_buf(), link.clone()] {
            let ours = percore_fs::metadata(&path).await.unwrap();
            let std = std::fs::metadata(&path).unwrap();
            assert_eq!(ours.len(), std.len(), "{path:?}");
            assert_eq!(ours.is_file(), std.is_file());
            assert_eq!(ours.is_dir(), std.is_dir());
            assert_eq!(ours.mode(), std.mode());
            assert_eq!(ours.permissions(), std.permissions());
            assert_eq!(ours.ino(), std.ino());
            assert_eq!(ours.dev(), std.dev());
            assert_eq!(ours.rdev(), std.rdev());
            assert_eq!(ours.nlink(), std.nlink());
            assert_eq!(ours.uid(), std.uid());
            assert_eq!(ours.gid(), std.gid());
            assert_eq!(ours.blksize(), std.blksize());
            assert_eq!(ours.blocks(), std.blocks());
            assert_eq!(ours.modified().unwrap(), std.modified().unwrap());
            assert_eq!(ours.accessed().unwrap(), std.accessed().unwrap());
            assert_eq!(
                ours.changed()
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
                std.ctime()
            );
            if let Ok(created) = std.created() {
                assert_eq!(ours.created().unwrap(), created);
            }
        }
        // Not following the link.
        let ours = percore_fs::symlink_metadata(&link).await.unwrap();
        let std = std::fs::symlink_metadata(&link).unwrap();
        assert!(ours.is_symlink() && std.is_symlink());
        assert_eq!((ours.ino(), ours.len()), (std.ino(), std.len()));
        // Of an open file.
        let file = percore_fs::File::open(&file_path).await.unwrap();
        let ours = file.metadata().await.unwrap();
        assert_eq!(
            (ours.ino(), ours.len()),
            (std::fs::metadata(&file_path).unwrap().ino(), 12345)
        );
        assert!(percore_fs::try_exists(&file_path).await.unwrap());
        assert!(!percore_fs::try_exists(dir.join("nope")).await.unwrap());
    })
    .unwrap();
}
