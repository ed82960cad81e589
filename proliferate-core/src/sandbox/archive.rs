//! Snapshot archives: a gzip-compressed tar of a session's workspace and agent home.
//!
//! The agent controls every file under the session folder and may be hostile: it can swap a
//! folder for a symbolic link while a snapshot is written. The walk therefore never resolves a
//! path through a folder the agent controls. It holds a descriptor for each folder, opens each
//! child relative to it with `O_NOFOLLOW`, stores symbolic links as links, and builds every tar
//! header from what the descriptors report. An entry that changes kind between being listed and
//! being opened is left out.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Take};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use tar::EntryType;

/// Names of cache folders, rebuilt on demand: left out of snapshots wherever they appear.
const SKIPPED: &[&str] = &[".cache", ".npm", "node_modules"];

/// The deepest folder nesting a snapshot accepts; it bounds the walk's stack and open descriptors.
const MAX_DEPTH: usize = 256;

/// Writes `root`'s `workspace` and `home` folders into a new archive at `destination`.
///
/// Fails, leaving nothing at `destination`, when the regular files hold more than `max_bytes`
/// bytes in all. The archive is written to a temporary file beside `destination` and renamed into
/// place once complete and synced. Returns the archive's size in bytes.
pub(crate) fn write(root: &Path, destination: &Path, max_bytes: u64) -> io::Result<u64> {
    let (temporary, file) = create_temporary(destination)?;
    let result = write_archive(root, file, max_bytes)
        .and_then(|size| std::fs::rename(&temporary, destination).map(|()| size));
    match result {
        Ok(size) => {
            // Best effort: the archive is complete and in place even if the folder sync fails.
            if let Some(folder) = destination.parent() {
                let _ = File::open(folder).and_then(|folder| folder.sync_all());
            }
            Ok(size)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Creates a new, private file beside `destination`, returning its path and the open file.
fn create_temporary(destination: &Path) -> io::Result<(PathBuf, File)> {
    let file_name = destination.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the snapshot path has no file name",
        )
    })?;
    let mut attempt = 0_u32;
    loop {
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(".{}.{attempt}.partial", std::process::id()));
        let path = destination.with_file_name(name);
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match opened {
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            opened => return opened.map(|file| (path, file)),
        }
    }
}

/// Writes the archive of `root` into `file`, syncs it, and returns its size in bytes.
fn write_archive(root: &Path, file: File, max_bytes: u64) -> io::Result<u64> {
    // `root` is the gateway's own session folder; only what is inside it is the agent's.
    let root = open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut walk = Walk {
        tar: tar::Builder::new(GzEncoder::new(file, Compression::fast())),
        remaining: max_bytes,
        max_bytes,
    };
    for folder in [c"workspace", c"home"] {
        let dir = open_folder(&root, folder)?;
        walk.folder(dir, Path::new(OsStr::from_bytes(folder.to_bytes())), 0)?;
    }
    let file = walk.tar.into_inner()?.finish()?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// The state of one archive walk.
struct Walk {
    /// The archive being written.
    tar: tar::Builder<GzEncoder<File>>,
    /// How many more bytes of regular files the archive may hold.
    remaining: u64,
    /// The limit `remaining` started from, for the error message.
    max_bytes: u64,
}

impl Walk {
    /// Appends the folder open as `dir`, named `name` in the archive, and everything under it.
    fn folder(&mut self, mut dir: Dir, name: &Path, depth: usize) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(io::Error::other(format!(
                "the snapshot has folders nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let mut header = header(&fstat(&dir)?, EntryType::Directory, 0);
        self.tar.append_data(&mut header, name, io::empty())?;
        let mut children = Vec::new();
        for entry in dir.iter() {
            let child = entry?.file_name().to_owned();
            let bytes = child.to_bytes();
            let skipped = SKIPPED.iter().any(|skipped| skipped.as_bytes() == bytes);
            if !(skipped || bytes == b"." || bytes == b"..") {
                children.push(child);
            }
        }
        children.sort();
        for child in children {
            let child_name = name.join(OsStr::from_bytes(child.to_bytes()));
            self.entry(&dir, &child, &child_name, depth)?;
        }
        Ok(())
    }

    /// Appends the entry `child` of the folder `dir` (at `depth`), named `name` in the archive.
    fn entry(&mut self, dir: &Dir, child: &CStr, name: &Path, depth: usize) -> io::Result<()> {
        let Some(stat) = unless_changed(fstatat(dir, child, AtFlags::AT_SYMLINK_NOFOLLOW))? else {
            return Ok(());
        };
        match kind(&stat) {
            SFlag::S_IFDIR => match unless_changed(open_folder(dir, child))? {
                Some(sub) => self.folder(sub, name, depth + 1),
                None => Ok(()),
            },
            SFlag::S_IFREG => self.file(dir, child, name),
            SFlag::S_IFLNK => match unless_changed(readlinkat(dir, child))? {
                Some(target) => {
                    let mut header = header(&stat, EntryType::Symlink, 0);
                    self.tar.append_link(&mut header, name, target)
                }
                None => Ok(()),
            },
            // Sockets, pipes and devices have no place in a snapshot.
            _ => Ok(()),
        }
    }

    /// Appends the regular file `child` of the folder `dir`, named `name` in the archive.
    fn file(&mut self, dir: &Dir, child: &CStr, name: &Path) -> io::Result<()> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK
            | OFlag::O_CLOEXEC;
        let Some(fd) = unless_changed(openat(dir, child, flags, Mode::empty()))? else {
            return Ok(());
        };
        let stat = fstat(&fd)?;
        if kind(&stat) != SFlag::S_IFREG {
            return Ok(());
        }
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        self.remaining = self.remaining.checked_sub(size).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the snapshot is larger than the limit of {} bytes",
                    self.max_bytes
                ),
            )
        })?;
        let mut header = header(&stat, EntryType::Regular, size);
        let contents = Exactly(File::from(fd).take(size));
        self.tar.append_data(&mut header, name, contents)
    }
}

/// Reads exactly the limit of its `Take`: no byte a file gained after its header was written,
/// and an error when the file shrank, since the tar entry needs exactly the size in its header.
struct Exactly<R>(Take<R>);

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.0.read(buffer)?;
        if read == 0 && !buffer.is_empty() && self.0.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a file shrank while the snapshot was written",
            ));
        }
        Ok(read)
    }
}

/// Opens the folder `name` of the folder `dir`, failing if `name` is anything else, a link too.
fn open_folder(dir: impl std::os::fd::AsFd, name: &CStr) -> nix::Result<Dir> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Dir::openat(dir, name, flags, Mode::empty())
}

/// Maps the errors of an entry that vanished or changed kind since it was listed to `None`.
fn unless_changed<T>(result: nix::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR | Errno::EINVAL) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

/// The kind of file `stat` describes: `S_IFREG`, `S_IFDIR`, `S_IFLNK` and so on.
fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// A tar header for an entry of `kind` and `size` bytes, from `stat`: permission bits and
/// modification time only, owned by root, without set-id bits.
fn header(stat: &FileStat, kind: EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(stat.st_mode & 0o777);
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(size);
    header
}

/// Unpacks an archive made by [`write`] into `root`, which then holds `workspace` and `home`.
///
/// Ownership, set-id bits and extended attributes are not restored. `tar` refuses absolute paths
/// and `..`, and checks that every entry's parent, resolved, lies inside `root`, so a symbolic
/// link in the archive cannot carry a later entry outside it.
pub(crate) fn unpack(archive: &Path, root: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(File::open(archive)?));
    archive.set_preserve_ownerships(false);
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    archive.unpack(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{create_dir_all, read, read_dir, read_link, symlink_metadata};
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Bytes that must never reach an archive unless placed inside the session folder.
    const SECRET: &[u8] = b"PROLIFERATE-TEST-SECRET-5d1c9e";

    /// A limit on file sizes ample for every test but the limit's own.
    const LIMIT: u64 = 1 << 20;

    /// A folder holding a session folder `root` with empty `workspace` and `home`, an `outside`
    /// folder with `secret.txt`, and an empty `snapshots` folder for the archive.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let base = tempfile::tempdir().unwrap();
        for folder in ["root/workspace", "root/home", "outside", "snapshots"] {
            create_dir_all(base.path().join(folder)).unwrap();
        }
        std::fs::write(base.path().join("outside/secret.txt"), SECRET).unwrap();
        let (root, destination) = (
            base.path().join("root"),
            base.path().join("snapshots/s.tgz"),
        );
        (base, root, destination)
    }

    /// Every entry of `archive`: its path, kind, link target and contents.
    fn entries(archive: &Path) -> Vec<(PathBuf, EntryType, Option<PathBuf>, Vec<u8>)> {
        let mut archive = tar::Archive::new(GzDecoder::new(File::open(archive).unwrap()));
        let entries = archive.entries().unwrap().map(|entry| {
            let mut entry = entry.unwrap();
            let (path, link) = (
                entry.path().unwrap().into_owned(),
                entry.link_name().unwrap(),
            );
            let link = link.map(|link| link.into_owned());
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            (path, entry.header().entry_type(), link, contents)
        });
        entries.collect()
    }

    /// Whether the contents of any entry of `archive` hold [`SECRET`].
    fn leaks(archive: &Path) -> bool {
        let holds = |contents: &Vec<u8>| contents.windows(SECRET.len()).any(|w| w == SECRET);
        entries(archive).iter().any(|entry| holds(&entry.3))
    }

    /// The control: [`leaks`] does find the secret copied into the workspace as a regular file.
    fn assert_control_leaks(root: &Path, destination: &Path) {
        std::fs::write(root.join("workspace/copy.txt"), SECRET).unwrap();
        write(root, destination, LIMIT).unwrap();
        assert!(
            leaks(destination),
            "the scan must find a secret copied into the workspace"
        );
    }

    /// How many files `folder` holds.
    fn count(folder: &Path) -> usize {
        read_dir(folder).unwrap().count()
    }

    /// Files, folders and links come back; caches, pipes, sockets and set-id bits do not.
    #[test]
    fn round_trip_keeps_files_folders_and_links_and_skips_caches() {
        let (base, root, destination) = layout();
        let workspace = root.join("workspace");
        create_dir_all(workspace.join("nested/deeper")).unwrap();
        std::fs::write(workspace.join("a.txt"), "alpha").unwrap();
        std::fs::write(workspace.join("nested/deeper/b.txt"), "beta").unwrap();
        std::fs::write(workspace.join("run.sh"), "#!/bin/sh\n").unwrap();
        let set_uid = PermissionsExt::from_mode(0o4755);
        std::fs::set_permissions(workspace.join("run.sh"), set_uid).unwrap();
        symlink("nested/deeper/b.txt", workspace.join("link")).unwrap();
        let secret = base.path().join("outside/secret.txt");
        symlink(&secret, root.join("home/secret-link")).unwrap();
        nix::unistd::mkfifo(&workspace.join("pipe"), Mode::S_IRUSR).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(workspace.join("socket")).unwrap();
        for folder in [
            "workspace/node_modules",
            "home/.cache",
            "home/.npm",
            "home/.config",
        ] {
            create_dir_all(root.join(folder)).unwrap();
            std::fs::write(root.join(folder).join("file"), folder).unwrap();
        }

        let size = write(&root, &destination, LIMIT).unwrap();
        assert_eq!(size, std::fs::metadata(&destination).unwrap().len());
        for (path, kind, _, _) in entries(&destination) {
            let stored = kind.is_dir() || kind.is_file() || kind.is_symlink();
            assert!(stored, "{path:?}: {kind:?}");
        }
        let restored = base.path().join("restored");
        unpack(&destination, &restored).unwrap();

        let text = |path: &str| std::fs::read_to_string(restored.join(path)).unwrap();
        assert_eq!(text("workspace/a.txt"), "alpha");
        assert_eq!(text("workspace/nested/deeper/b.txt"), "beta");
        assert_eq!(text("workspace/link"), "beta");
        assert_eq!(text("home/.config/file"), "home/.config");
        let mode = std::fs::metadata(restored.join("workspace/run.sh"))
            .unwrap()
            .permissions();
        assert_eq!(
            mode.mode() & 0o7777,
            0o755,
            "permission bits kept, set-id bits dropped"
        );
        assert_eq!(
            read_link(restored.join("workspace/link")).unwrap(),
            Path::new("nested/deeper/b.txt")
        );
        assert_eq!(
            read_link(restored.join("home/secret-link")).unwrap(),
            secret
        );
        let absent = [
            "workspace/node_modules",
            "workspace/pipe",
            "workspace/socket",
            "home/.cache",
            "home/.npm",
        ];
        for path in absent {
            assert!(symlink_metadata(restored.join(path)).is_err(), "{path}");
        }
    }

    /// A link to a file or folder outside `root` is archived as a link; its target is not read.
    #[test]
    fn a_link_to_a_secret_is_stored_as_a_link_never_followed() {
        let (base, root, destination) = layout();
        let secret = base.path().join("outside/secret.txt");
        symlink(&secret, root.join("workspace/leak")).unwrap();
        symlink(base.path().join("outside"), root.join("home/outside")).unwrap();

        write(&root, &destination, LIMIT).unwrap();
        let found = entries(&destination);
        let kind_and_target = |name: &str| {
            let mut matching = found.iter().filter(|entry| entry.0.starts_with(name));
            let (_, kind, target, _) = matching.next().expect("the link is archived");
            assert!(
                matching.next().is_none(),
                "nothing is archived under {name}"
            );
            (kind.is_symlink(), target.clone())
        };
        assert_eq!(kind_and_target("workspace/leak"), (true, Some(secret)));
        assert_eq!(
            kind_and_target("home/outside"),
            (true, Some(base.path().join("outside")))
        );
        assert!(!leaks(&destination));
        assert_control_leaks(&root, &destination);
    }

    /// A thread swaps folders and a file for links out of `root` while archives are written.
    #[test]
    fn swapping_folders_for_links_during_the_walk_never_leaks() {
        let (base, root, destination) = layout();
        let (staging, outside) = (root.join("staging"), base.path().join("outside"));
        // Each name in the workspace is in turn a real entry, absent, a link out, and absent.
        let mut swaps = vec![
            ("file".to_owned(), "f".to_owned()),
            ("file-link".into(), "f".into()),
        ];
        create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("file"), "harmless").unwrap();
        symlink(outside.join("secret.txt"), staging.join("file-link")).unwrap();
        for slot in 0..8 {
            create_dir_all(staging.join(format!("dir{slot}"))).unwrap();
            std::fs::write(staging.join(format!("dir{slot}/secret.txt")), "harmless").unwrap();
            symlink(&outside, staging.join(format!("link{slot}"))).unwrap();
            swaps.push((format!("dir{slot}"), format!("sub{slot}")));
            swaps.push((format!("link{slot}"), format!("sub{slot}")));
        }

        let (stop, rounds) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let swapper = std::thread::spawn({
            let (stop, rounds, workspace) = (stop.clone(), rounds.clone(), root.join("workspace"));
            move || {
                while !stop.load(Ordering::Relaxed) {
                    for (staged, name) in &swaps {
                        std::fs::rename(staging.join(staged), workspace.join(name)).unwrap();
                        std::fs::rename(workspace.join(name), staging.join(staged)).unwrap();
                    }
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // At least 200 archives, and at least 1,000 rounds of 18 swaps each, however slow.
        let mut writes = 0;
        while writes < 200 || rounds.load(Ordering::Relaxed) < 1_000 {
            let written = write(&root, &destination, LIMIT);
            let leaked = written.is_ok() && leaks(&destination);
            if written.is_err() || leaked {
                stop.store(true, Ordering::Relaxed);
                swapper.join().unwrap();
                panic!("write {writes}: {written:?}, leaked: {leaked}");
            }
            writes += 1;
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert_control_leaks(&root, &destination);
    }

    /// A file that grew is cut at its recorded size; one that shrank is an error.
    #[test]
    fn a_file_is_read_up_to_its_recorded_size_and_refused_if_shorter() {
        let mut grown = Vec::new();
        let mut reader = Exactly(io::Cursor::new(b"recorded, then grown").take(8));
        reader.read_to_end(&mut grown).unwrap();
        assert_eq!(grown, b"recorded");
        let shrunk = Exactly(io::Cursor::new(b"short").take(8)).read_to_end(&mut Vec::new());
        assert_eq!(shrunk.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Past the limit, or with `home` a link, the write fails and leaves no file behind.
    #[test]
    fn exceeding_the_limit_fails_and_leaves_no_file() {
        let (_base, root, destination) = layout();
        let folder = destination.parent().unwrap();
        std::fs::write(root.join("workspace/big"), [7; 1_000]).unwrap();
        std::fs::write(root.join("home/small"), [7; 100]).unwrap();

        let error = write(&root, &destination, 1_099).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert!(
            error.to_string().contains("the limit of 1099 bytes"),
            "{error}"
        );
        assert_eq!(count(folder), 0, "nothing left behind");

        std::fs::rename(root.join("home"), root.join("real-home")).unwrap();
        symlink(root.join("workspace"), root.join("home")).unwrap();
        assert!(
            write(&root, &destination, LIMIT).is_err(),
            "a linked home is refused"
        );
        assert_eq!(count(folder), 0, "nothing left behind");

        std::fs::remove_file(root.join("home")).unwrap();
        std::fs::rename(root.join("real-home"), root.join("home")).unwrap();
        write(&root, &destination, 1_100).unwrap();
        assert_eq!(count(folder), 1, "exactly the limit fits");
    }

    /// A hostile archive cannot write through a link it placed, nor through one it overwrites.
    #[test]
    fn unpacking_through_an_archived_link_writes_nothing_outside() {
        let (base, root, _) = layout();
        let outside = base.path().join("outside");
        let evil = |name: &str, link: &str, target: &Path, file: &str| {
            let path = base.path().join(name);
            let gzip = GzEncoder::new(File::create(&path).unwrap(), Compression::fast());
            let mut builder = tar::Builder::new(gzip);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, link, target).unwrap();
            let mut header = tar::Header::new_gnu();
            header.set_size(5);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, file, &b"pwned"[..])
                .unwrap();
            builder.into_inner().unwrap().finish().unwrap();
            path
        };

        let through = evil(
            "through.tgz",
            "workspace/escape",
            &outside,
            "workspace/escape/pwned",
        );
        assert!(unpack(&through, &root).is_err());
        let over = evil(
            "over.tgz",
            "workspace/over",
            &outside.join("target"),
            "workspace/over",
        );
        unpack(&over, &root).unwrap();
        assert_eq!(read(root.join("workspace/over")).unwrap(), b"pwned");
        assert!(
            symlink_metadata(root.join("workspace/over"))
                .unwrap()
                .is_file()
        );

        assert_eq!(
            count(&outside),
            1,
            "only secret.txt, nothing written outside"
        );
        assert_eq!(read(outside.join("secret.txt")).unwrap(), SECRET);
    }
}
