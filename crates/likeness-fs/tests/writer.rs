//! The atomic writer and the output guard against a hostile file system, all inside temp
//! folders: links, FIFOs, sockets and folders where a file is expected, read-only and 0600
//! files, planted temporaries and the leftovers of a killed writer.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use likeness_fs::{AtomicFile, FsError, TEMP_MARKER, check_output, sweep_stale, write_atomic};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(TEMP_MARKER))
        .collect()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(status.success());
}

#[test]
fn a_rewrite_replaces_the_content_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.json");
    write_atomic(&path, b"one").unwrap();
    write_atomic(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_symlink_at_the_target_is_refused_and_what_it_points_to_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.path().join("gallery.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();

    let err = write_atomic(&link, b"attack").unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(matches!(check_output(&link), Err(FsError::Symlink { .. })));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn links_planted_at_every_name_the_old_writer_would_use_redirect_nothing() {
    // The old writer used `.NAME.PID.tmp`, opened with O_TRUNC and following links: a link
    // planted there made the victim's run overwrite the link's target. Plant links at the old
    // names for every plausible pid, and at our marker with guessable suffixes.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let path = dir.path().join("gallery.json");
    let own_pid = std::process::id();
    for pid in own_pid.saturating_sub(50)..own_pid + 50 {
        let planted = dir.path().join(format!(".gallery.json.{pid}.tmp"));
        std::os::unix::fs::symlink(&victim, planted).unwrap();
    }
    for guess in ["0000000000000000", "ffffffffffffffff", "0123456789abcdef"] {
        let planted = dir
            .path()
            .join(format!(".gallery.json{TEMP_MARKER}{guess}"));
        std::os::unix::fs::symlink(&victim, planted).unwrap();
    }
    for round in 0..20 {
        write_atomic(&path, format!("round {round}").as_bytes()).unwrap();
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&path).unwrap(), b"round 19");
    assert!(
        !std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn two_writers_never_share_a_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.png");
    let a = AtomicFile::create(&path).unwrap();
    let b = AtomicFile::create(&path).unwrap();
    assert_ne!(a.temp_path(), b.temp_path());
    let name = a
        .temp_path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!(".out.png{TEMP_MARKER}")),
        "{name}"
    );
}

#[test]
fn a_0600_file_stays_0600_after_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.json");
    std::fs::write(&path, b"biometrics").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_atomic(&path, b"more biometrics").unwrap();
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&path, b"again").unwrap();
    assert_eq!(mode(&path), 0o640);
}

#[test]
fn a_new_file_can_be_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.json");
    let mut f = AtomicFile::create_with_mode(&path, 0o600).unwrap();
    f.write_all(b"x").unwrap();
    f.commit().unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn the_owner_and_group_of_the_old_file_are_kept_or_the_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    std::fs::write(&path, b"old").unwrap();
    // Root can give the file to anyone: the replacement must keep that owner. Anyone else
    // cannot, so for them a file of another owner must be refused (never silently taken over).
    let given = std::os::unix::fs::chown(&path, Some(4242), Some(4243));
    match given {
        Ok(()) => {
            write_atomic(&path, b"new").unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4242, 4243));
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
        }
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            // Not root: no file of another owner can be made here, so the file is ours and
            // the rewrite must keep our ids.
            write_atomic(&path, b"new").unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            let before = std::fs::metadata(dir.path()).unwrap();
            assert_eq!(meta.uid(), before.uid());
        }
    }
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_read_only_file_in_a_writable_folder_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.json");
    std::fs::write(&path, b"keep me").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = write_atomic(&path, b"overwritten").unwrap_err();
    assert!(matches!(err, FsError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(matches!(check_output(&path), Err(FsError::ReadOnly { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    assert_eq!(mode(&path), 0o444);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_fifo_is_refused_without_blocking_and_stays_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.png");
    mkfifo(&fifo);
    let err = write_atomic(&fifo, b"png").unwrap_err();
    assert!(
        matches!(
            err,
            FsError::NotRegular {
                kind: "FIFO (named pipe)",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        check_output(&fifo),
        Err(FsError::NotRegular { .. })
    ));
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_socket_or_a_folder_is_refused_as_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("out.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    assert!(matches!(
        write_atomic(&sock, b"x"),
        Err(FsError::NotRegular { kind: "socket", .. })
    ));
    let folder = dir.path().join("out");
    std::fs::create_dir(&folder).unwrap();
    assert!(matches!(
        check_output(&folder),
        Err(FsError::NotRegular { kind: "folder", .. })
    ));
    assert!(folder.is_dir());
}

#[test]
fn a_symlink_to_a_device_is_refused_before_anything_is_written() {
    // What `--draw /dev/null` did as root, reproduced without touching /dev: the link itself
    // is refused, so the device behind it is never opened, let alone replaced.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("null");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    assert!(matches!(check_output(&link), Err(FsError::Symlink { .. })));
    assert!(matches!(
        write_atomic(&link, b"x"),
        Err(FsError::Symlink { .. })
    ));
}

#[test]
fn an_output_in_a_missing_folder_is_fine_and_a_file_posing_as_folder_is_not() {
    let dir = tempfile::tempdir().unwrap();
    check_output(&dir.path().join("new/sub/out.png")).unwrap();
    assert!(
        !dir.path().join("new").exists(),
        "the check creates nothing"
    );
    let file = dir.path().join("plain");
    std::fs::write(&file, b"").unwrap();
    let err = check_output(&file.join("out.png")).unwrap_err();
    assert!(err.to_string().contains("not a folder"), "{err}");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn an_abandoned_write_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"old").unwrap();
    {
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half a new fi").unwrap();
        // dropped without commit: an error or a panic in the producer
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_killed_writers_temporary_is_swept_and_a_live_ones_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.json");
    // A live writer's temporary, old, but locked (creating it sweeps nothing yet).
    let old = SystemTime::now() - Duration::from_secs(3600);
    let live = AtomicFile::create(&path).unwrap();
    std::fs::File::options()
        .write(true)
        .open(live.temp_path())
        .unwrap()
        .set_modified(old)
        .unwrap();
    // A kill -9 leaves an unlocked temporary behind (its lock died with the process).
    let dead = dir
        .path()
        .join(format!(".gallery.json{TEMP_MARKER}00112233aabbccdd"));
    std::fs::write(&dead, b"half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // Unrelated files that merely look alike are never touched.
    let other = dir.path().join(".gallery.json.likeness-tmp-notours");
    std::fs::write(&other, b"x").unwrap();

    assert_eq!(sweep_stale(&path), 1);
    assert!(!dead.exists());
    assert!(live.temp_path().exists());
    assert!(other.exists());
    drop(live);
    // The next ordinary write sweeps too.
    std::fs::write(&dead, b"half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .unwrap()
        .set_modified(old)
        .unwrap();
    write_atomic(&path, b"whole").unwrap();
    assert!(!dead.exists());
}

#[test]
fn an_unwritable_folder_is_found_by_the_output_check() {
    let dir = tempfile::tempdir().unwrap();
    // A folder's place taken by a FIFO cannot hold files, for root too.
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let err = check_output(&fifo.join("out.png")).unwrap_err();
    assert!(err.to_string().contains("not a folder"), "{err}");
}
