//! Moves the running runtime onto a read-only copy of its own binary without starting it
//! again: every mapping of the binary is made anew from the copy, then the copy becomes the
//! process's exe (prctl PR_SET_MM_MAP, CRIU's interface, with every other field of the
//! memory map written back as it is). It gives what the protective re-exec gives (see
//! `sealed_exe`: /proc/PID/exe, /proc/PID/map_files and an execve of /proc/self/exe all lead
//! to the copy, in this process and every fork of it) for a dozen syscalls instead of a second
//! start of the runtime (an execve of its whole image, its relocation and the C library's
//! start-up): 0.3–0.7 ms less wall time on every create, run and exec (docs/performance.md).
//!
//! The kernel refuses a new exe while any mapping still comes from the old file (EBUSY), so
//! a mapping missed here cannot leave the host's binary reachable: the caller then re-executes
//! as before. Where that check cannot see the binary's mappings (a binary on overlayfs: its
//! mappings are of the layer's file), the move is not made and the caller re-executes too.
//! The same check serves as a probe: it comes after the checks of the map and of
//! the capability (CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the runtime's user
//! namespace, which a rootless runtime in its own namespace has too) and of the kernel
//! (CONFIG_CHECKPOINT_RESTORE), so where any of them fails nothing is remapped before the
//! caller falls back.
//!
//! How each loaded segment (the binary's program headers, found through the auxiliary
//! vector) is carried over:
//! - read-only and executable segments hold the file's bytes: mapped again from the copy at
//!   the same address, offset and protection. The copy is the same inode, so the same
//!   page-cache pages: code runs on across the mmap that replaces it;
//! - writable segments (data, and relro, written by start-up's relocation) hold what the
//!   process wrote there: copied into anonymous memory that is moved over them (mremap), and
//!   relro made read-only again as the C library had it.
//!
//! Must run while the process has a single thread, before anything else needs its data: no
//! write to a writable segment may happen between its copy and its replacement.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

/// elf.h.
const PT_LOAD: u32 = 1;
const PT_PHDR: u32 = 6;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One segment's pages backed by the binary, and how they move to the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Mapped again from the copy.
    Map {
        start: usize,
        len: usize,
        prot: libc::c_int,
        offset: libc::off_t,
    },
    /// Copied into anonymous memory moved over them.
    Carry { start: usize, len: usize },
}

/// The remapping of the running image, worked out before anything changes.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    steps: Vec<Step>,
    /// The range the C library made read-only after relocation, to make so again.
    relro: Option<(usize, usize)>,
}

/// Runs this process from `copy` (an O_PATH fd of a read-only bind of the very file it runs
/// from) from now on. On an error nothing that was done needs undoing: every mapping still
/// holds the same bytes, from one file or the other.
pub(crate) fn run_from(copy: BorrowedFd<'_>) -> Result<(), Errno> {
    let file = reopen(copy)?;
    // Everything that allocates comes first: the C library's heap lives partly in the data
    // segment, and its break is part of the map.
    let plan = current_plan()?;
    let map = MemoryMap::current(file.as_fd())?;
    match map.set() {
        // Permitted, and the kernel sees the binary still mapped: its check will tell.
        Err(Errno::EBUSY) => {}
        // Permitted although the binary is mapped: the kernel cannot see its mappings (a
        // binary on overlayfs is mapped through the layer's file, not the path it was run
        // from), so it could not refuse a mapping missed here either. Re-executing maps the
        // whole image from the copy.
        Ok(()) => return Err(Errno::ENOTSUP),
        Err(e) => return Err(e),
    }
    for step in &plan.steps {
        match *step {
            Step::Map {
                start,
                len,
                prot,
                offset,
            } => map_again(file.as_fd(), start, len, prot, offset)?,
            Step::Carry { start, len } => carry(start, len)?,
        }
    }
    if let Some((start, len)) = plan.relro {
        // SAFETY: the range is the relro part of this binary's writable segment, which
        // nothing writes after start-up's relocation (the C library made it read-only).
        let r = unsafe { libc::mprotect(start as *mut libc::c_void, len, libc::PROT_READ) };
        Errno::result(r)?;
    }
    map.set()
}

/// The copy opened for reading (mmap and prctl refuse an O_PATH fd).
fn reopen(copy: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    std::fs::File::open(crate::rootfs::syscall::fd_path(copy))
        .map(OwnedFd::from)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// linux/prctl.h.
const PR_SET_MM_MAP: libc::c_ulong = 14;

/// linux/prctl.h `struct prctl_mm_map`: the bounds the kernel keeps for a process's memory
/// (shown in /proc/PID/stat), its auxiliary vector and its exe.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// This process's memory map as it is, with a new exe.
struct MemoryMap(PrctlMmMap);

impl MemoryMap {
    /// The map from /proc/self/stat (the break is read as it is set), `exe` as the exe. The
    /// auxiliary vector is left alone (size 0).
    fn current(exe: BorrowedFd<'_>) -> Result<MemoryMap, Errno> {
        let stat = crate::procinfo::read_to_string("/proc/self/stat")
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let fields: Vec<u64> = crate::procinfo::stat_fields(&stat)
            .ok_or(Errno::EINVAL)?
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // proc(5) numbers the fields from 1; these start at field 3.
        let field = |n: usize| fields.get(n - 3).copied().ok_or(Errno::EINVAL);
        Ok(MemoryMap(PrctlMmMap {
            start_code: field(26)?,
            end_code: field(27)?,
            start_stack: field(28)?,
            start_data: field(45)?,
            end_data: field(46)?,
            start_brk: field(47)?,
            arg_start: field(48)?,
            arg_end: field(49)?,
            env_start: field(50)?,
            env_end: field(51)?,
            exe_fd: u32::try_from(exe.as_raw_fd()).map_err(|_| Errno::EBADF)?,
            ..PrctlMmMap::default()
        }))
    }

    /// Sets the map: the exe changes, every other field is written back as it is.
    fn set(&self) -> Result<(), Errno> {
        let mut map = self.0;
        // SAFETY: brk(0) changes nothing and returns the current break.
        let brk = unsafe { libc::syscall(libc::SYS_brk, 0) };
        map.brk = u64::try_from(brk).map_err(|_| Errno::EINVAL)?;
        let size = libc::c_ulong::try_from(size_of::<PrctlMmMap>()).map_err(|_| Errno::EINVAL)?;
        let none: libc::c_ulong = 0;
        // SAFETY: prctl reads `size` bytes of the live struct `map`; it changes only this
        // process's exe link and memory bounds, the bounds to the values they have.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_MM,
                PR_SET_MM_MAP,
                &map as *const PrctlMmMap,
                size,
                none,
            )
        };
        Errno::result(r).map(drop)
    }
}

/// One auxiliary vector entry as a usize.
fn aux(kind: libc::c_ulong) -> Result<usize, Errno> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave the process.
    let v = unsafe { libc::getauxval(kind) };
    usize::try_from(v).map_err(|_| Errno::EOVERFLOW)
}

/// The plan for the running binary, from its program headers.
fn current_plan() -> Result<Plan, Errno> {
    let at_phdr = aux(libc::AT_PHDR)?;
    let count = aux(libc::AT_PHNUM)?;
    if at_phdr == 0 || count == 0 || aux(libc::AT_PHENT)? != size_of::<libc::Elf64_Phdr>() {
        return Err(Errno::ENOEXEC);
    }
    // SAFETY: the kernel points AT_PHDR at AT_PHNUM program headers of the running binary,
    // mapped read-only for the life of the process; they are copied out before any remap.
    let phdrs =
        unsafe { std::slice::from_raw_parts(at_phdr as *const libc::Elf64_Phdr, count) }.to_vec();
    plan(&phdrs, at_phdr, aux(libc::AT_PAGESZ)?)
}

/// The plan for a binary with these program headers, loaded so that its own headers are at
/// `at_phdr`, with pages of `page` bytes.
fn plan(phdrs: &[libc::Elf64_Phdr], at_phdr: usize, page: usize) -> Result<Plan, Errno> {
    let big = |v: u64| usize::try_from(v).map_err(|_| Errno::EOVERFLOW);
    if page == 0 || !page.is_power_of_two() {
        return Err(Errno::EINVAL);
    }
    let down = |a: usize| a & !(page - 1);
    let up = |a: usize| a.checked_add(page - 1).map(down).ok_or(Errno::EOVERFLOW);
    // Where the binary was loaded: a position-independent one anywhere, which its PT_PHDR
    // tells (a binary without one is not what this runtime builds).
    let own = phdrs
        .iter()
        .find(|p| p.p_type == PT_PHDR)
        .ok_or(Errno::ENOEXEC)?;
    let bias = at_phdr
        .checked_sub(big(own.p_vaddr)?)
        .ok_or(Errno::ENOEXEC)?;
    let at = |vaddr: u64| {
        big(vaddr)
            .ok()
            .and_then(|v| bias.checked_add(v))
            .ok_or(Errno::EOVERFLOW)
    };
    let mut steps = Vec::new();
    for p in phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_filesz > 0)
    {
        let first = at(p.p_vaddr)?;
        let start = down(first);
        let end = up(first
            .checked_add(big(p.p_filesz)?)
            .ok_or(Errno::EOVERFLOW)?)?;
        let len = end - start;
        let lead = first - start;
        let offset = big(p.p_offset)?
            .checked_sub(lead)
            .filter(|o| o % page == 0)
            .ok_or(Errno::ENOEXEC)?;
        if p.p_flags & PF_W != 0 {
            steps.push(Step::Carry { start, len });
        } else {
            let mut prot = libc::PROT_NONE;
            for (flag, bit) in [(PF_R, libc::PROT_READ), (PF_X, libc::PROT_EXEC)] {
                if p.p_flags & flag != 0 {
                    prot |= bit;
                }
            }
            let offset = libc::off_t::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
            steps.push(Step::Map {
                start,
                len,
                prot,
                offset,
            });
        }
    }
    // As the C library rounds it: the end down, so a page shared with data stays writable.
    let relro = match phdrs.iter().find(|p| p.p_type == PT_GNU_RELRO) {
        Some(r) => {
            let first = at(r.p_vaddr)?;
            let start = down(first);
            let end = down(first.checked_add(big(r.p_memsz)?).ok_or(Errno::EOVERFLOW)?);
            (end > start).then_some((start, end - start))
        }
        None => None,
    };
    Ok(Plan { steps, relro })
}

/// The pages at `start` mapped again from `file` as the kernel mapped them at execve.
fn map_again(
    file: BorrowedFd<'_>,
    start: usize,
    len: usize,
    prot: libc::c_int,
    offset: libc::off_t,
) -> Result<(), Errno> {
    let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
    // SAFETY: the range is one of this binary's read-only segments and `file` holds the same
    // bytes (the same inode), so everything that points into it, the code running this call
    // included, finds what it found before.
    let at = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            prot,
            flags,
            file.as_raw_fd(),
            offset,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    if at as usize != start {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// The pages at `start` replaced by an anonymous copy of themselves.
fn carry(start: usize, len: usize) -> Result<(), Errno> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a new anonymous mapping at an address of the kernel's choosing.
    let copy = unsafe { libc::mmap(std::ptr::null_mut(), len, rw, flags, -1, 0) };
    if copy == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: `start..start+len` is one of this binary's writable segments, readable as a
    // whole (relro is read-only, never unreadable), and `copy` is a fresh mapping of `len`
    // bytes. Nothing writes the segment between this copy and the mremap (one thread, no
    // allocation), so the copy is all the segment holds.
    unsafe { std::ptr::copy_nonoverlapping(start as *const u8, copy.cast::<u8>(), len) };
    let moved = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    // SAFETY: moves the copy over the segment, which it replaces atomically.
    let at = unsafe { libc::mremap(copy, len, len, moved, start as *mut libc::c_void) };
    if at == libc::MAP_FAILED {
        let err = Errno::last();
        // SAFETY: unmaps the copy made above, which nothing else refers to.
        unsafe { libc::munmap(copy, len) };
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phdr(
        p_type: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
    ) -> libc::Elf64_Phdr {
        libc::Elf64_Phdr {
            p_type,
            p_flags: flags,
            p_offset: offset,
            p_vaddr: vaddr,
            p_paddr: vaddr,
            p_filesz: filesz,
            p_memsz: memsz,
            p_align: 0x1000,
        }
    }

    /// The program headers of the static-pie this runtime is built as.
    fn static_pie() -> Vec<libc::Elf64_Phdr> {
        vec![
            phdr(PT_PHDR, PF_R, 0x40, 0x40, 0x268, 0x268),
            phdr(PT_LOAD, PF_R, 0, 0, 0xe594c, 0xe594c),
            phdr(PT_LOAD, PF_R | PF_X, 0xe5980, 0xe6980, 0x3854a0, 0x3854a0),
            phdr(PT_LOAD, PF_R | PF_W, 0x46ae20, 0x46ce20, 0x32748, 0x331e0),
            phdr(PT_LOAD, PF_R | PF_W, 0x49d568, 0x4a0568, 0x2ca8, 0x10d98),
            phdr(7, PF_R, 0x46ae20, 0x46ce20, 0x18, 0xa0),
            phdr(PT_GNU_RELRO, PF_R, 0x46ae20, 0x46ce20, 0x32748, 0x331e0),
        ]
    }

    #[test]
    fn segments_are_mapped_again_or_carried_as_the_kernel_loaded_them() {
        let base = 0x7f00_0000_0000;
        let plan = plan(&static_pie(), base + 0x40, 0x1000).unwrap();
        let read = libc::PROT_READ;
        assert_eq!(
            plan.steps,
            vec![
                Step::Map {
                    start: base,
                    len: 0xe6000,
                    prot: read,
                    offset: 0
                },
                Step::Map {
                    start: base + 0xe6000,
                    len: 0x386000,
                    prot: read | libc::PROT_EXEC,
                    offset: 0xe5000,
                },
                Step::Carry {
                    start: base + 0x46c000,
                    len: 0x34000
                },
                // The file's part only: the rest of .bss is anonymous already.
                Step::Carry {
                    start: base + 0x4a0000,
                    len: 0x4000
                },
            ]
        );
        assert_eq!(plan.relro, Some((base + 0x46c000, 0x34000)));
    }

    #[test]
    fn a_binary_it_cannot_place_is_refused() {
        let mut no_phdr = static_pie();
        no_phdr.remove(0);
        assert_eq!(plan(&no_phdr, 0x40, 0x1000), Err(Errno::ENOEXEC));
        // A segment whose offset and address disagree within a page cannot be mapped.
        let mut skewed = static_pie();
        skewed[2].p_offset += 8;
        assert_eq!(plan(&skewed, 0x40, 0x1000), Err(Errno::ENOEXEC));
        assert_eq!(plan(&static_pie(), 0x40, 3), Err(Errno::EINVAL));
    }
}
