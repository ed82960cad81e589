//! A session's own disk: an ext4 file system in a sparse image file the size of the session's
//! disk limit, mounted at `sessions/<id>/disk`, holding the agent's home and workspace. The agent
//! cannot use more than that, whatever it writes, and a full disk is its own alone.
//!
//! Mounting needs root (and `mkfs.ext4` and loop devices); elsewhere the home and workspace are
//! plain folders of the session and only the file-size rlimit applies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder that holds a session's home and workspace: its disk when it has one.
pub(crate) fn data_root(session_dir: &Path) -> PathBuf {
    let disk = session_dir.join("disk");
    if disk.is_dir() {
        disk
    } else {
        session_dir.to_path_buf()
    }
}

/// True when this process can give sessions disks of their own.
pub(crate) fn available() -> bool {
    nix::unistd::geteuid().is_root()
        && Path::new("/dev/loop-control").exists()
        && ["mkfs.ext4", "mount", "umount"]
            .iter()
            .all(|program| which(program).is_some())
}

fn which(program: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|folder| Path::new(folder).join(program))
        .find(|path| path.exists())
}

fn run(program: &str, arguments: &[&std::ffi::OsStr]) -> std::io::Result<()> {
    let output = Command::new(which(program).unwrap_or_else(|| program.into()))
        .args(arguments)
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// True when `folder` is a mount point.
fn is_mounted(folder: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let folder = folder.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(folder.as_ref()))
}

/// Mounts the session's disk of `bytes`, creating it the first time; a session that started
/// without one (it has a home already) keeps its folders. Returns the mount point, if any.
pub(crate) fn attach(session_dir: &Path, bytes: u64) -> std::io::Result<Option<PathBuf>> {
    let (image, disk) = (session_dir.join("disk.img"), session_dir.join("disk"));
    if is_mounted(&disk) {
        return Ok(Some(disk));
    }
    if !image.exists() {
        if session_dir.join("home").exists() || !available() {
            return Ok(None);
        }
        let file = std::fs::File::create_new(&image)?;
        file.set_len(bytes)?;
        drop(file);
        let created = run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", "-E", "root_owner=0:0"]
                .map(std::ffi::OsStr::new)
                .iter()
                .copied()
                .chain([image.as_os_str()])
                .collect::<Vec<_>>(),
        );
        if let Err(error) = created {
            let _ = std::fs::remove_file(&image);
            return Err(error);
        }
    }
    std::fs::create_dir_all(&disk)?;
    run(
        "mount",
        &[
            "-o".as_ref(),
            "loop,nosuid,nodev".as_ref(),
            image.as_os_str(),
            disk.as_os_str(),
        ],
    )?;
    let _ = std::fs::remove_dir(disk.join("lost+found"));
    Ok(Some(disk))
}

/// Unmounts the session's disk, if it has one mounted.
pub(crate) fn detach(session_dir: &Path) {
    let disk = session_dir.join("disk");
    if is_mounted(&disk) {
        let _ = run("umount", &["-l".as_ref(), disk.as_os_str()]);
    }
}

/// True when the session's disk has no room left.
pub(crate) fn full(session_dir: &Path) -> bool {
    let disk = session_dir.join("disk");
    is_mounted(&disk)
        && nix::sys::statvfs::statvfs(&disk)
            .is_ok_and(|stats| stats.blocks_available() == 0 || stats.files_available() == 0)
}
