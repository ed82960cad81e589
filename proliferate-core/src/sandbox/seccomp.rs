//! The seccomp filter every sandboxed agent runs under: system calls a coding agent never needs
//! and that widen the kernel surface an escape would use fail with `EPERM`.
//!
//! Denied: mounting and changing roots (`mount`, `umount2`, `pivot_root`, the new mount API,
//! `chroot`), namespaces (`unshare`, `setns`, and `clone` with any namespace flag; `clone3`
//! answers `ENOSYS` so C libraries fall back to `clone`, whose flags the filter can read),
//! tracing other processes (`ptrace`, `process_vm_readv`/`writev`, `kcmp`, `pidfd_getfd`), kernel
//! keyrings (`keyctl`, `add_key`, `request_key`), kernel modules and images (`init_module`,
//! `finit_module`, `delete_module`, `kexec_load`, `kexec_file_load`), and other privileged or
//! rarely needed interfaces (`bpf`, `perf_event_open`, `userfaultfd`, `open_by_handle_at`,
//! `name_to_handle_at`, `swapon`, `swapoff`, `reboot`, `acct`, `quotactl`, `syslog`,
//! `lookup_dcookie`, `iopl`, `ioperm`, `settimeofday`, `clock_settime`, `adjtimex`).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// System calls denied whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_lookup_dcookie,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_adjtimex,
];

/// `clone` flags that create namespaces.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWTIME as u64,
];

/// A failure to build or install the filter.
#[derive(Debug, thiserror::Error)]
#[error("seccomp: {0}")]
pub struct SeccompError(String);

fn failed(error: impl std::fmt::Display) -> SeccompError {
    SeccompError(error.to_string())
}

/// The two programs: the deny list (`EPERM`), and `clone3` answering `ENOSYS`.
fn programs() -> Result<[BpfProgram; 2], SeccompError> {
    let arch = std::env::consts::ARCH.try_into().map_err(failed)?;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&call| (call, Vec::new())).collect();
    let namespace_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    denied.insert(libc::SYS_clone, namespace_rules);
    let deny = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(failed)?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(failed)?;
    Ok([
        deny.try_into().map_err(failed)?,
        clone3.try_into().map_err(failed)?,
    ])
}

/// Installs the filter on the calling thread (and so on every process it starts afterwards);
/// sets `no_new_privs` first.
pub(crate) fn install() -> Result<(), SeccompError> {
    for program in programs()? {
        seccompiler::apply_filter(&program).map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_compiles_for_this_machine() {
        let programs = super::programs().expect("the filter compiles");
        assert!(programs.iter().all(|program| !program.is_empty()));
    }
}
