//! Snapshot archives: a gzip-compressed tar of a session's workspace and agent home.

use std::fs::File;
use std::io;
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// Folders of the agent's home that are caches, rebuilt on demand, and left out of snapshots.
const SKIPPED: &[&str] = &[".cache", ".npm", "node_modules"];

/// Writes `root`'s `workspace` and `home` folders into a new archive at `destination`.
pub(crate) fn write(root: &Path, destination: &Path) -> io::Result<u64> {
    let temporary = destination.with_extension("partial");
    let mut builder = tar::Builder::new(GzEncoder::new(
        File::create(&temporary)?,
        Compression::fast(),
    ));
    builder.follow_symlinks(false);
    for folder in ["workspace", "home"] {
        append_tree(&mut builder, &root.join(folder), Path::new(folder))?;
    }
    builder.into_inner()?.finish()?.sync_all()?;
    std::fs::rename(&temporary, destination)?;
    Ok(std::fs::metadata(destination)?.len())
}

fn append_tree(
    builder: &mut tar::Builder<GzEncoder<File>>,
    source: &Path,
    name: &Path,
) -> io::Result<()> {
    builder.append_dir(name, source)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let file_name = entry.file_name();
        if SKIPPED.iter().any(|skipped| file_name == *skipped) {
            continue;
        }
        let (path, name) = (entry.path(), name.join(&file_name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            append_tree(builder, &path, &name)?;
        } else if kind.is_file() || kind.is_symlink() {
            builder.append_path_with_name(&path, &name)?;
        }
    }
    Ok(())
}

/// Unpacks an archive made by [`write`] into `root`, which then holds `workspace` and `home`.
pub(crate) fn unpack(archive: &Path, root: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(File::open(archive)?));
    archive.set_preserve_permissions(true);
    archive.unpack(root)
}
