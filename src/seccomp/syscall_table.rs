//! Syscall names and numbers for the architectures an x86_64 kernel runs: x86_64, its x32 ABI
//! and i386 compat. Native tables come from the `syscalls` crate (generated from the kernel's
//! syscall tables); x32 is derived from the x86_64 table the way the kernel's
//! `syscall_64.tbl` does it.

use std::str::FromStr;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive on AUDIT_ARCH_X86_64 with this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    X32,
    X86,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::X32, Arch::X86];

    /// The `seccomp_data.arch` value syscalls of this ABI carry.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
        }
    }

    /// Whether syscall arguments are 32 bits wide, so that only their low halves are compared
    /// (libseccomp treats x32 this way too).
    pub fn args_are_32bit(self) -> bool {
        !matches!(self, Arch::X86_64)
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X32 => "x32",
            Arch::X86 => "x86",
        }
    }

    /// The syscall number `name` has on this ABI, as seen in `seccomp_data.nr` (x32 numbers
    /// include [`X32_SYSCALL_BIT`]). `None` if the ABI has no such syscall.
    pub fn resolve(self, name: &str) -> Option<u32> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::X86 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::X32 => Arch::X86_64.resolve(name).and_then(x32_from_x86_64),
        }
    }

    /// All three numbers at once (one table lookup for x86_64 and x32).
    pub fn resolve_all(name: &str) -> [Option<u32>; 3] {
        let n64 = Arch::X86_64.resolve(name);
        [n64, n64.and_then(x32_from_x86_64), Arch::X86.resolve(name)]
    }

    /// Index into [`Arch::ALL`] and [`Arch::resolve_all`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name of syscall `nr` on this ABI (x32 numbers with or without the x32 bit).
    pub fn name_of(self, nr: u32) -> Option<&'static str> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
            Arch::X86 => syscalls::x86::Sysno::new(nr as usize).map(|s| s.name()),
            Arch::X32 => {
                let nr = nr & !X32_SYSCALL_BIT;
                if let Some(&(name, _)) = X32_SPECIFIC.iter().find(|(_, n)| *n == nr) {
                    return Some(name);
                }
                let name = syscalls::x86_64::Sysno::new(nr as usize)?.name();
                let replaced = X32_SPECIFIC.iter().any(|(n, _)| *n == name);
                (!replaced && !X86_64_ONLY.contains(&name)).then_some(name)
            }
        }
    }

    /// The highest syscall number this ABI's table knows (x32 without the x32 bit).
    pub fn max_nr(self) -> u32 {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::last().id() as u32,
            Arch::X86 => syscalls::x86::Sysno::last().id() as u32,
            Arch::X32 => X32_SPECIFIC
                .iter()
                .map(|(_, n)| *n)
                .chain([Arch::X86_64.max_nr()])
                .max()
                .unwrap_or(0),
        }
    }
}

/// The x32 number of the syscall that has x86_64 number `nr`.
fn x32_from_x86_64(nr: u32) -> Option<u32> {
    if X86_64_ONLY_NRS.binary_search(&nr).is_err() {
        return Some(X32_SYSCALL_BIT | nr);
    }
    let name = syscalls::x86_64::Sysno::new(nr as usize)?.name();
    X32_SPECIFIC
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, x)| X32_SYSCALL_BIT | x)
}

/// x86_64 numbers of the syscalls in [`X32_SPECIFIC`] and [`X86_64_ONLY`], sorted.
const X86_64_ONLY_NRS: &[u32] = &[
    13, 15, 16, 19, 20, 45, 46, 47, 54, 55, 59, 101, 127, 128, 129, 131, 134, 156, 174, 177, 178,
    180, 205, 206, 209, 211, 214, 215, 222, 236, 244, 246, 247, 273, 274, 278, 279, 295, 296, 297,
    299, 307, 310, 311, 322, 327, 328, 335, 453,
];

/// x32 entry points of syscalls whose x86_64 numbers are 64-bit only (`x32` rows, 512 up).
const X32_SPECIFIC: &[(&str, u32)] = &[
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

/// `64` rows of the x86_64 table without an x32 counterpart.
const X86_64_ONLY: &[&str] = &[
    "uselib",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "set_thread_area",
    "get_thread_area",
    "epoll_ctl_old",
    "epoll_wait_old",
    "vserver",
    "uretprobe",
    "map_shadow_stack",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_per_arch() {
        assert_eq!(Arch::X86_64.resolve("getppid"), Some(110));
        assert_eq!(Arch::X86.resolve("getppid"), Some(64));
        assert_eq!(Arch::X32.resolve("getppid"), Some(X32_SYSCALL_BIT | 110));
        assert_eq!(Arch::X32.resolve("ioctl"), Some(X32_SYSCALL_BIT | 514));
        assert_eq!(Arch::X32.resolve("uselib"), None);
        assert_eq!(Arch::X86_64.resolve("socketcall"), None);
        assert_eq!(Arch::X86.resolve("socketcall"), Some(102));
        assert_eq!(Arch::X86_64.resolve("no_such_call"), None);
        assert_eq!(Arch::X32.name_of(X32_SYSCALL_BIT | 514), Some("ioctl"));
        assert_eq!(Arch::X32.name_of(16), None);
        assert_eq!(Arch::X86.name_of(54), Some("ioctl"));
        assert_eq!(Arch::X32.resolve("set_thread_area"), None);
        assert_eq!(Arch::X32.resolve("execveat"), Some(X32_SYSCALL_BIT | 545));
    }

    #[test]
    fn numeric_x32_exclusions_match_the_named_tables() {
        let mut from_names: Vec<u32> = X32_SPECIFIC
            .iter()
            .map(|(n, _)| *n)
            .chain(X86_64_ONLY.iter().copied())
            .map(|n| Arch::X86_64.resolve(n).unwrap())
            .collect();
        from_names.sort();
        assert_eq!(from_names, X86_64_ONLY_NRS);
    }
}
