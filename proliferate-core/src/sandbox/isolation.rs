//! How the local provider isolates an agent: bubblewrap, or (for single-user development only) a
//! plain process.
//!
//! Under bubblewrap the agent runs in its own user, mount, PID, IPC, UTS, cgroup and network
//! namespaces, as an unprivileged user (`agent`, uid 1000) with no capabilities, `no_new_privs`,
//! a new terminal session, no further user namespaces, and the seccomp filter of
//! [`super::seccomp`]; it dies with the gateway. Its file system is built from nothing: the host's
//! `/usr` read-only (with the `/bin`, `/lib`... links a merged-`/usr` system has), a curated `/etc`
//! (no `shadow`, `gshadow`, host keys or TLS private keys), a private `/tmp`, its own `/proc`, a
//! minimal `/dev`, the agent's install read-only, and its own home and workspace writable at
//! `/home/agent` and `/home/agent/workspace` (the same paths in every session, so snapshots
//! restore anywhere). Nothing of `/run`, `/var`, `/home`, `/root` or the data directory exists
//! inside. Its network has only its own loopback; `/run/proliferate` holds its channel to the
//! gateway (see [`super::channel`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// Which isolation the local provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationMode {
    /// Bubblewrap with its own network, user and file system; starting fails where it does not
    /// work. The default.
    #[default]
    Bubblewrap,
    /// A plain process with its own home and workspace folders and no further isolation: the agent
    /// can read what the gateway's user can and reach the host's network. Single-user development
    /// only.
    Process,
}

impl IsolationMode {
    /// The mode's name, as `SessionInfo.isolation` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bubblewrap => "bubblewrap",
            Self::Process => "process",
        }
    }
}

/// Home of the agent inside a bubblewrap sandbox.
pub(crate) const SANDBOX_HOME: &str = "/home/agent";
/// Workspace of the agent inside a bubblewrap sandbox.
pub(crate) const SANDBOX_WORKSPACE: &str = "/home/agent/workspace";
/// Where the sandbox's end of its channel to the gateway lives (writable by the sandbox).
pub(crate) const SANDBOX_CHANNEL: &str = "/run/proliferate/sandbox";
/// Where the gateway's listening sockets for this sandbox appear (read-only).
pub(crate) const GATEWAY_CHANNEL: &str = "/run/proliferate/gateway";
/// Where the sandbox helper program appears.
pub(crate) const SANDBOX_HELPER: &str = "/run/proliferate/bin/proliferate-sandbox";
/// The agent's user and group id inside the sandbox.
const SANDBOX_UID: &str = "1000";

/// Files and folders of the host's `/etc` that programs in the sandbox need; nothing else of
/// `/etc` exists inside (no `shadow`, `gshadow`, `ssh`, `ssl/private`, `sudoers`...).
const ETC: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "gitconfig",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "profile",
    "protocols",
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
    "terminfo",
    "timezone",
];

/// Top-level names a merged-`/usr` system links into `/usr`, or keeps as real folders.
const SYSTEM_ROOTS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Why isolation cannot work on this machine, or `None` when it does: bubblewrap must exist and
/// be able to create every namespace the sandbox uses.
pub(crate) fn bubblewrap_problem() -> Option<String> {
    static PROBLEM: OnceLock<Option<String>> = OnceLock::new();
    PROBLEM
        .get_or_init(|| {
            let output = std::process::Command::new("bwrap")
                .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
                .args(["--unshare-all", "--unshare-user", "--uid", SANDBOX_UID])
                .args(["--gid", SANDBOX_UID, "--disable-userns", "--cap-drop", "ALL"])
                .args(["--", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output();
            match output {
                Err(error) => Some(format!(
                    "bubblewrap (bwrap) cannot run: {error}; install it (Debian: apt install bubblewrap)"
                )),
                Ok(output) if !output.status.success() => Some(format!(
                    "bubblewrap cannot create the sandbox's namespaces (it needs unprivileged user \
                     namespaces or root, and version 0.8 or later): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )),
                Ok(_) => None,
            }
        })
        .clone()
}

/// Host paths a sandbox is built from.
pub(crate) struct Mounts<'a> {
    /// The agent's home folder.
    pub home: &'a Path,
    /// The agent's workspace.
    pub workspace: &'a Path,
    /// The sandbox's writable channel folder (it binds the agent's socket there).
    pub sandbox_channel: &'a Path,
    /// The gateway's folder of listening sockets for this sandbox.
    pub gateway_channel: &'a Path,
    /// `passwd` and `group` files naming the sandbox's user.
    pub identity: &'a Path,
    /// The sandbox helper program.
    pub helper: &'a Path,
    /// A folder the agent's executable needs.
    pub install_root: Option<&'a Path>,
    /// The size of the private `/tmp`, in bytes.
    pub tmp_bytes: u64,
}

/// The `bwrap` arguments that run a program in the sandbox described in the module docs.
pub(crate) fn bubblewrap_arguments(mounts: &Mounts<'_>) -> Vec<String> {
    let mut arguments: Vec<String> = Vec::new();
    let mut add = |items: &[&str]| arguments.extend(items.iter().map(|item| item.to_string()));
    add(&["--unshare-all", "--unshare-user", "--disable-userns"]);
    add(&[
        "--uid",
        SANDBOX_UID,
        "--gid",
        SANDBOX_UID,
        "--cap-drop",
        "ALL",
    ]);
    add(&[
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
    ]);
    add(&["--ro-bind", "/usr", "/usr"]);
    for name in SYSTEM_ROOTS {
        let host = Path::new("/").join(name);
        match std::fs::read_link(&host) {
            Ok(target) => add(&[
                "--symlink",
                &target.to_string_lossy(),
                &host.to_string_lossy(),
            ]),
            Err(_) if host.is_dir() => add(&[
                "--ro-bind",
                &host.to_string_lossy(),
                &host.to_string_lossy(),
            ]),
            Err(_) => {}
        }
    }
    for name in ETC {
        let host = Path::new("/etc").join(name);
        if host.exists() {
            add(&[
                "--ro-bind",
                &host.to_string_lossy(),
                &host.to_string_lossy(),
            ]);
        }
    }
    let path = |path: &Path| path.display().to_string();
    for name in ["passwd", "group"] {
        add(&[
            "--ro-bind",
            &path(&mounts.identity.join(name)),
            &format!("/etc/{name}"),
        ]);
    }
    add(&["--proc", "/proc", "--dev", "/dev"]);
    add(&["--size", &mounts.tmp_bytes.to_string(), "--tmpfs", "/tmp"]);
    add(&[
        "--tmpfs",
        "/run",
        "--ro-bind",
        &path(mounts.helper),
        SANDBOX_HELPER,
    ]);
    add(&["--ro-bind", &path(mounts.gateway_channel), GATEWAY_CHANNEL]);
    add(&["--bind", &path(mounts.sandbox_channel), SANDBOX_CHANNEL]);
    if let Some(root) = mounts.install_root {
        add(&["--ro-bind", &path(root), &path(root)]);
    }
    add(&["--bind", &path(mounts.home), SANDBOX_HOME]);
    add(&["--bind", &path(mounts.workspace), SANDBOX_WORKSPACE]);
    add(&["--chdir", SANDBOX_WORKSPACE, "--"]);
    arguments
}

/// The `passwd` and `group` lines that name the sandbox's user.
pub(crate) fn identity_files() -> [(&'static str, String); 2] {
    [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\n\
                 agent:x:{SANDBOX_UID}:{SANDBOX_UID}:agent:{SANDBOX_HOME}:/bin/bash\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\nagent:x:{SANDBOX_UID}:\nnogroup:x:65534:\n"),
        ),
    ]
}

/// The programs that may be the sandbox helper, in order: `PROLIFERATE_SANDBOX_HELPER`, the
/// running program itself (the reference server is its own helper), and `proliferate-sandbox`
/// beside it or one folder up (where cargo puts test programs).
pub(crate) fn helper_candidates() -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PROLIFERATE_SANDBOX_HELPER")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(program) = std::env::current_exe() {
        let folders: Vec<PathBuf> = program
            .ancestors()
            .skip(1)
            .take(2)
            .map(Path::to_path_buf)
            .collect();
        candidates.push(program);
        candidates.extend(
            folders
                .iter()
                .map(|folder| folder.join("proliferate-sandbox")),
        );
    }
    candidates
}

/// True when `program` answers as the sandbox helper.
pub(crate) fn is_helper(program: &Path) -> bool {
    std::process::Command::new(program)
        .args([super::helper::SUBCOMMAND, "--version"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"proliferate-sandbox "))
}
