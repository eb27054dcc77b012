//! Linux confinement for the Python sandbox: landlock (filesystem, TCP, abstract sockets,
//! signals) and a seccomp filter (no fork/clone/socket/io_uring). Kernel ABI: landlock(7),
//! seccomp(2); no crates, raw syscalls through `libc`.
//!
//! The ruleset is built in the parent (it opens paths and allocates); the child only calls
//! async-signal-safe `prctl` / `syscall` between fork and exec (`apply_in_child`).

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::Path;

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const SYS_LANDLOCK_ADD_RULE: libc::c_long = 445;
const SYS_LANDLOCK_RESTRICT_SELF: libc::c_long = 446;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;

// Filesystem rights (landlock.h).
const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_REFER: u64 = 1 << 13;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
/// Rights that apply to a regular file (the rest only make sense on directories).
const FS_FILE_RIGHTS: u64 = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Landlock ABI version of the running kernel (0: not available).
pub fn landlock_abi() -> i64 {
    // SAFETY: the version query takes no pointers.
    let v = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

/// A landlock ruleset fd prepared in the parent: read+execute beneath `read_roots`, everything
/// beneath `rw_root`, no TCP bind/connect (ABI >= 4), no abstract unix sockets or signals
/// outside the sandbox (ABI >= 6).
pub struct Ruleset {
    fd: RawFd,
}

impl Ruleset {
    pub fn new(read_roots: &[&Path], rw_root: &Path) -> Result<Ruleset, String> {
        let abi = landlock_abi();
        if abi < 1 {
            return Err("landlock is not available in this kernel".into());
        }
        let mut fs = (1u64 << 13) - 1; // ABI 1: bits 0..=12
        if abi >= 2 {
            fs |= FS_REFER;
        }
        if abi >= 3 {
            fs |= FS_TRUNCATE;
        }
        if abi >= 5 {
            fs |= FS_IOCTL_DEV;
        }
        let attr = RulesetAttr {
            handled_access_fs: fs,
            handled_access_net: if abi >= 4 { 0b11 } else { 0 },
            scoped: if abi >= 6 { 0b11 } else { 0 },
        };
        let size = match abi {
            1..=3 => 8usize,
            4 | 5 => 16,
            _ => 24,
        };
        // SAFETY: attr outlives the call and `size` never exceeds its size.
        let fd = unsafe {
            libc::syscall(
                SYS_LANDLOCK_CREATE_RULESET,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        if fd < 0 {
            return Err(format!(
                "landlock_create_ruleset: {}",
                std::io::Error::last_os_error()
            ));
        }
        let rs = Ruleset { fd: fd as RawFd };
        for root in read_roots {
            rs.allow(root, FS_EXECUTE | FS_READ_FILE | FS_READ_DIR)?;
        }
        rs.allow(rw_root, fs)?;
        Ok(rs)
    }

    fn allow(&self, path: &Path, rights: u64) -> Result<(), String> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: NUL in path", path.display()))?;
        // SAFETY: c is a valid C string; the fd is closed below.
        let pfd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if pfd < 0 {
            return Ok(()); // a root that does not exist grants nothing
        }
        let is_dir = std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
        let attr = PathBeneathAttr {
            allowed_access: if is_dir {
                rights
            } else {
                rights & FS_FILE_RIGHTS
            },
            parent_fd: pfd,
        };
        // SAFETY: attr lives across the call; fds are valid.
        let r = unsafe {
            libc::syscall(
                SYS_LANDLOCK_ADD_RULE,
                self.fd,
                LANDLOCK_RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        let err = std::io::Error::last_os_error();
        // SAFETY: pfd was opened above.
        unsafe { libc::close(pfd) };
        if r < 0 {
            Err(format!("landlock_add_rule {}: {err}", path.display()))
        } else {
            Ok(())
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }
}

impl Drop for Ruleset {
    fn drop(&mut self) {
        // SAFETY: fd is owned.
        unsafe { libc::close(self.fd) };
    }
}

// seccomp-bpf.
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

#[cfg(target_arch = "x86_64")]
const DENIED: &[libc::c_long] = &[
    libc::SYS_fork,
    libc::SYS_vfork,
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_io_uring_setup,
    libc::SYS_ptrace,
];
#[cfg(target_arch = "aarch64")]
const DENIED: &[libc::c_long] = &[
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_io_uring_setup,
    libc::SYS_ptrace,
];

/// The seccomp program: other architectures' syscalls (i386 `int 0x80`, x32) and the denied list
/// fail with EPERM; everything else is allowed.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn seccomp_program() -> Vec<libc::sock_filter> {
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let deny = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let n = DENIED.len() as u8;
    let mut p = vec![
        stmt(ld, 4), // seccomp_data.arch
        jump(AUDIT_ARCH, 1, 0),
        stmt(ret, deny),
        stmt(ld, 0), // seccomp_data.nr
        // x32 ABI numbers have bit 30 set: nr >= 0x4000_0000 -> deny (jump past the list).
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: n + 1,
            jf: 0,
            k: 0x4000_0000,
        },
    ];
    for (i, &nr) in DENIED.iter().enumerate() {
        // Match -> jump to the deny at the end; the allow sits right after the list.
        p.push(jump(nr as u32, n - i as u8, 0));
    }
    p.push(stmt(ret, SECCOMP_RET_ALLOW));
    p.push(stmt(ret, deny));
    p
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn seccomp_program() -> Vec<libc::sock_filter> {
    vec![]
}

/// Between fork and exec: no new privileges, landlock, seccomp. Only raw syscalls (async-signal-safe).
pub fn apply_in_child(ruleset: Option<RawFd>, filter: &[libc::sock_filter]) -> std::io::Result<()> {
    // SAFETY: plain syscalls on valid arguments; `prog` points into `filter`, alive for the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if let Some(fd) = ruleset
            && libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0u32) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if !filter.is_empty() {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
