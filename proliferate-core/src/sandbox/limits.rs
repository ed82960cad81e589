//! Resource limits of a sandbox: memory, CPU and process count through a control group (v2, or
//! the v1 controllers, whichever the host has), open files and file size through rlimits set by
//! the sandbox helper, disk through a disk of its own ([`super::disk`]). The control group also freezes the sandbox while a snapshot is taken.
//!
//! The gateway creates `proliferate/<session id>` under its own control group in each controller
//! and moves the sandbox into it before bubblewrap starts, so nothing in the sandbox runs outside
//! it. Where no control group can be created (an unprivileged gateway without a delegated
//! cgroup), memory, CPU and process limits are not enforced and `SandboxLimits.enforced_by`
//! says so.

use std::path::{Path, PathBuf};

use crate::protocol::v1::SandboxLimits;

/// The server's defaults: 2 GiB of memory, one CPU, 512 processes, 4,096 open files, 10 GiB of
/// disk.
pub fn default_limits() -> SandboxLimits {
    SandboxLimits {
        memory_bytes: Some(2 << 30),
        cpu_millicores: Some(1000),
        processes: Some(512),
        open_files: Some(4096),
        disk_bytes: Some(10 << 30),
        ..SandboxLimits::default()
    }
}

/// `requested`, each field no higher than `server`'s and no lower than a sandbox can work with
/// (64 MiB of memory and disk, 10 millicores, 16 processes, 64 open files); `Err` names the
/// first field that is not.
pub fn within(server: &SandboxLimits, requested: &SandboxLimits) -> Result<SandboxLimits, String> {
    fn pick<T: PartialOrd + Copy + std::fmt::Display + From<u32>>(
        name: &str,
        server: Option<T>,
        requested: Option<T>,
    ) -> Result<Option<T>, String> {
        let least = T::from(match name {
            "memory_bytes" | "disk_bytes" => 64 << 20,
            "cpu_millicores" => 10,
            "processes" => 16,
            _ => 64,
        });
        match (server, requested) {
            (_, Some(asked)) if asked < least => Err(format!(
                "limits.{name} {asked} is below the least a sandbox works with, {least}"
            )),
            (Some(most), Some(asked)) if asked > most => Err(format!(
                "limits.{name} {asked} is above the server's limit of {most}"
            )),
            (_, Some(asked)) => Ok(Some(asked)),
            (most, None) => Ok(most),
        }
    }
    Ok(SandboxLimits {
        memory_bytes: pick("memory_bytes", server.memory_bytes, requested.memory_bytes)?,
        cpu_millicores: pick(
            "cpu_millicores",
            server.cpu_millicores,
            requested.cpu_millicores,
        )?,
        processes: pick("processes", server.processes, requested.processes)?,
        open_files: pick("open_files", server.open_files, requested.open_files)?,
        disk_bytes: pick("disk_bytes", server.disk_bytes, requested.disk_bytes)?,
        ..SandboxLimits::default()
    })
}

/// A sandbox's control group: one folder (v2) or one per controller (v1).
#[derive(Debug)]
pub(crate) struct ControlGroup {
    version: u8,
    folders: Vec<(&'static str, PathBuf)>,
}

/// Where each controller the sandbox uses is mounted, and the gateway's own group in it.
fn hierarchies() -> Option<(u8, Vec<(&'static str, PathBuf)>)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount_of = |kind: &str, controller: Option<&str>| {
        mounts.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut fields = after.split(' ');
            let (fs, _source, options) = (fields.next()?, fields.next()?, fields.next()?);
            let matches = fs == kind
                && controller.is_none_or(|name| options.split(',').any(|option| option == name));
            let mount_point = PathBuf::from(before.split(' ').nth(4)?);
            matches.then_some(mount_point)
        })
    };
    let group_of = |controller: &str| {
        own.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, names, path) = (fields.next()?, fields.next()?, fields.next()?);
            let listed = if controller.is_empty() {
                names.is_empty()
            } else {
                names.split(',').any(|name| name == controller)
            };
            listed.then(|| path.trim_start_matches('/').to_owned())
        })
    };
    let v1: Option<Vec<_>> = ["memory", "pids", "cpu", "freezer"]
        .into_iter()
        .map(|controller| {
            let base = mount_of("cgroup", Some(controller))?.join(group_of(controller)?);
            Some((controller, base))
        })
        .collect();
    if let Some(v1) = v1 {
        return Some((1, v1));
    }
    let base = mount_of("cgroup2", None)?.join(group_of("")?);
    let available = std::fs::read_to_string(base.join("cgroup.controllers")).ok()?;
    ["memory", "pids", "cpu"]
        .iter()
        .all(|controller| available.split_whitespace().any(|name| name == *controller))
        .then(|| (2, vec![("unified", base)]))
}

fn write(folder: &Path, file: &str, value: impl std::fmt::Display) -> std::io::Result<()> {
    std::fs::write(folder.join(file), value.to_string())
}

impl ControlGroup {
    /// Creates the session's group with `limits`; `None` where this host allows none.
    pub fn create(session_id: &str, limits: &SandboxLimits) -> Option<Self> {
        let (version, bases) = hierarchies()?;
        let mut folders = Vec::new();
        for (controller, base) in bases {
            let parent = base.join("proliferate");
            if version == 2 && !parent.exists() {
                std::fs::create_dir_all(&parent).ok()?;
                write(&base, "cgroup.subtree_control", "+memory +pids +cpu").ok()?;
                write(&parent, "cgroup.subtree_control", "+memory +pids +cpu").ok()?;
            }
            let folder = parent.join(session_id);
            std::fs::create_dir_all(&folder).ok()?;
            folders.push((controller, folder));
        }
        let group = Self { version, folders };
        group.apply(limits).ok()?;
        Some(group)
    }

    fn folder(&self, controller: &str) -> Option<&Path> {
        self.folders
            .iter()
            .find(|(name, _)| *name == controller || *name == "unified")
            .map(|(_, folder)| folder.as_path())
    }

    fn apply(&self, limits: &SandboxLimits) -> std::io::Result<()> {
        let (memory, pids, cpu) = (
            self.folder("memory").unwrap_or(Path::new("")),
            self.folder("pids").unwrap_or(Path::new("")),
            self.folder("cpu").unwrap_or(Path::new("")),
        );
        if let Some(bytes) = limits.memory_bytes {
            if self.version == 2 {
                write(memory, "memory.max", bytes)?;
                let _ = write(memory, "memory.swap.max", 0);
            } else {
                write(memory, "memory.limit_in_bytes", bytes)?;
                let _ = write(memory, "memory.memsw.limit_in_bytes", bytes);
            }
        }
        if let Some(processes) = limits.processes {
            write(pids, "pids.max", processes)?;
        }
        if let Some(millicores) = limits.cpu_millicores {
            let quota = u64::from(millicores) * 100;
            if self.version == 2 {
                write(cpu, "cpu.max", format!("{quota} 100000"))?;
            } else {
                write(cpu, "cpu.cfs_period_us", 100_000)?;
                write(cpu, "cpu.cfs_quota_us", quota)?;
            }
        }
        Ok(())
    }

    /// `cgroup v1` or `cgroup v2`.
    pub fn describe(&self) -> String {
        format!("cgroup v{}", self.version)
    }

    /// The files a process writes its pid to, to join the group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.folders
            .iter()
            .map(|(_, folder)| folder.join("cgroup.procs"))
            .collect()
    }

    /// Freezes or thaws every process of the sandbox.
    pub fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        match (self.version, self.folder("freezer")) {
            (2, Some(folder)) => write(folder, "cgroup.freeze", u8::from(frozen)),
            (_, Some(folder)) => {
                write(
                    folder,
                    "freezer.state",
                    if frozen { "FROZEN" } else { "THAWED" },
                )?;
                for _ in 0..100 {
                    let state = std::fs::read_to_string(folder.join("freezer.state"))?;
                    if !frozen || state.trim() == "FROZEN" {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::io::Error::other("the sandbox did not freeze"))
            }
            _ => Ok(()),
        }
    }

    /// Which limit the group has run into since it was created, described with its value.
    pub fn exhausted(&self, limits: &SandboxLimits) -> Option<String> {
        let counter = |controller: &str, file: &str, key: Option<&str>| {
            let text = std::fs::read_to_string(self.folder(controller)?.join(file)).ok()?;
            let value = match key {
                Some(key) => text.lines().find_map(|line| line.strip_prefix(key))?,
                None => text.as_str(),
            };
            value.trim().parse::<u64>().ok().filter(|count| *count > 0)
        };
        let memory = if self.version == 2 {
            counter("memory", "memory.events", Some("oom_kill "))
        } else {
            counter("memory", "memory.failcnt", None)
        };
        if memory.is_some() {
            return Some(format!(
                "memory (limit {} bytes)",
                limits.memory_bytes.unwrap_or_default()
            ));
        }
        counter("pids", "pids.events", Some("max "))
            .map(|_| format!("processes (limit {})", limits.processes.unwrap_or_default()))
    }

    /// Removes the group once its processes are gone.
    pub fn remove(&self) {
        for (_, folder) in &self.folders {
            let _ = std::fs::remove_dir(folder);
        }
    }
}
