//! Device rules on cgroup2: a BPF_PROG_TYPE_CGROUP_DEVICE program generated from the
//! effective rule set and attached to the container cgroup with BPF_F_ALLOW_MULTI.
//! Re-applying attaches the new program before detaching the old ones, so there is no
//! window without a filter.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::devices::{DevType, Effective, Rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
use super::CgroupError;

// Kernel ABI constants (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
// bpf_cgroup_dev_ctx.access_type: device type in the low 16 bits, access in the high 16.
const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;
const DEVCG_ACC_MKNOD: i32 = 1;
const DEVCG_ACC_READ: i32 = 2;
const DEVCG_ACC_WRITE: i32 = 4;

/// struct bpf_insn.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn kernel_access(access: u8) -> i32 {
    let mut a = 0;
    if access & ACC_MKNOD != 0 {
        a |= DEVCG_ACC_MKNOD;
    }
    if access & ACC_READ != 0 {
        a |= DEVCG_ACC_READ;
    }
    if access & ACC_WRITE != 0 {
        a |= DEVCG_ACC_WRITE;
    }
    a
}

/// Compile the effective rules. Registers after the prologue: r2 = device type,
/// r3 = requested access, r4 = major, r5 = minor. Each exception is a block that falls
/// through to the next on mismatch and returns the opposite of the default on match.
pub fn compile(eff: &Effective) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    let verdict = i32::from(!eff.default_allow);
    for r in &eff.exceptions {
        prog.extend(rule_block(r, eff.default_allow, verdict));
    }
    prog.push(insn(MOV_K, 0, 0, 0, i32::from(eff.default_allow)));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

fn rule_block(r: &Rule, default_allow: bool, verdict: i32) -> Vec<Insn> {
    // Conditions as (insns, index of the jump to patch) pairs; jumps skip to the block end.
    let mut body: Vec<Insn> = Vec::new();
    let mut jumps: Vec<usize> = Vec::new();
    match r.typ {
        DevType::All => {}
        DevType::Block | DevType::Char => {
            let t = if r.typ == DevType::Block {
                DEVCG_DEV_BLOCK
            } else {
                DEVCG_DEV_CHAR
            };
            jumps.push(body.len());
            body.push(insn(JNE_K, 2, 0, 0, t));
        }
    }
    let acc = kernel_access(r.access);
    if default_allow {
        // A deny exception matches when any requested access is in it.
        body.push(insn(MOV_X, 1, 3, 0, 0));
        body.push(insn(AND_K, 1, 0, 0, acc));
        jumps.push(body.len());
        body.push(insn(JEQ_K, 1, 0, 0, 0));
    } else if acc != DEVCG_ACC_MKNOD | DEVCG_ACC_READ | DEVCG_ACC_WRITE {
        // An allow exception matches when every requested access is in it.
        body.push(insn(MOV_X, 1, 3, 0, 0));
        body.push(insn(AND_K, 1, 0, 0, !acc));
        jumps.push(body.len());
        body.push(insn(JNE_K, 1, 0, 0, 0));
    }
    if let Some(major) = r.major {
        jumps.push(body.len());
        body.push(insn(JNE_K, 4, 0, 0, major as i32));
    }
    if let Some(minor) = r.minor {
        jumps.push(body.len());
        body.push(insn(JNE_K, 5, 0, 0, minor as i32));
    }
    body.push(insn(MOV_K, 0, 0, 0, verdict));
    body.push(insn(EXIT, 0, 0, 0, 0));
    let len = body.len();
    for j in jumps {
        body[j].off = i16::try_from(len - j - 1).expect("a rule's program is a few instructions");
    }
    body
}

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable buffer of the given size laid out as the union
    // bpf_attr member for `cmd`; the kernel reads/writes at most that many bytes.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

fn bpf_err(op: &'static str) -> impl FnOnce(std::io::Error) -> CgroupError {
    move |source| CgroupError::Bpf { op, source }
}

/// A length in a bpf_attr: the program (a few instructions per device rule), the log buffer
/// and the id array are all far below 4 GiB; saturating keeps the kernel's own check.
fn wire_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Take ownership of an fd the kernel returned (bpf fds are always close-on-exec).
fn owned(fd: libc::c_long) -> std::io::Result<OwnedFd> {
    // SAFETY: `fd` was just returned by a successful bpf(2) call and is owned by nobody else.
    Ok(unsafe { crate::sys::owned_fd(fd) }?)
}

fn load(prog: &[Insn]) -> Result<OwnedFd, CgroupError> {
    match load_with_log(prog, None) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            // Load again with the verifier log only to explain the failure: a log buffer
            // that is too small would itself make the load fail.
            let mut log = vec![0u8; 1 << 16];
            let detail = match load_with_log(prog, Some(&mut log)) {
                Ok(_) => String::new(),
                Err(_) => {
                    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                    String::from_utf8_lossy(&log[..end]).trim().to_string()
                }
            };
            Err(CgroupError::Bpf {
                op: "BPF_PROG_LOAD",
                source: if detail.is_empty() {
                    e
                } else {
                    std::io::Error::new(e.kind(), format!("{e}; verifier: {detail}"))
                },
            })
        }
    }
}

fn load_with_log(prog: &[Insn], log: Option<&mut [u8]>) -> std::io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    // union bpf_attr, BPF_PROG_LOAD member: prog_type, insn_cnt, insns, license,
    // log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16],
    // prog_ifindex, expected_attach_type.
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE);
    put_u32(&mut attr, 4, wire_u32(prog.len()));
    put_u64(&mut attr, 8, prog.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    if let Some(log) = log {
        put_u32(&mut attr, 24, 1);
        put_u32(&mut attr, 28, wire_u32(log.len()));
        put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
    }
    put_u32(&mut attr, 68, BPF_CGROUP_DEVICE);
    bpf(BPF_PROG_LOAD, &mut attr).and_then(owned)
}

/// Ids of the device programs attached to the cgroup.
pub fn attached(cgroup: &OwnedFd) -> Result<Vec<u32>, CgroupError> {
    let mut ids = vec![0u32; 64];
    let mut attr = [0u8; 40];
    put_u32(&mut attr, 0, cgroup.as_raw_fd() as u32);
    put_u32(&mut attr, 4, BPF_CGROUP_DEVICE);
    put_u64(&mut attr, 16, ids.as_mut_ptr() as u64);
    put_u32(&mut attr, 24, wire_u32(ids.len()));
    bpf(BPF_PROG_QUERY, &mut attr).map_err(bpf_err("BPF_PROG_QUERY"))?;
    let count = u32::from_ne_bytes([attr[24], attr[25], attr[26], attr[27]]) as usize;
    ids.truncate(count.min(64));
    Ok(ids)
}

fn prog_attach(cmd: libc::c_long, cgroup: &OwnedFd, prog: i32, flags: u32) -> std::io::Result<()> {
    // BPF_PROG_ATTACH/DETACH member: target_fd, attach_bpf_fd, attach_type, attach_flags.
    let mut attr = [0u8; 24];
    put_u32(&mut attr, 0, cgroup.as_raw_fd() as u32);
    put_u32(&mut attr, 4, prog as u32);
    put_u32(&mut attr, 8, BPF_CGROUP_DEVICE);
    put_u32(&mut attr, 12, flags);
    bpf(cmd, &mut attr).map(|_| ())
}

pub fn open_cgroup(dir: &Path) -> Result<OwnedFd, CgroupError> {
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| CgroupError::Read {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    Ok(fd)
}

/// Replace the device programs attached to `dir` with one enforcing `rules`.
pub fn apply(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let prog = compile(&Effective::from_rules(rules));
    let cgroup = open_cgroup(dir)?;
    let old = attached(&cgroup)?;
    let fd = load(&prog)?;
    prog_attach(BPF_PROG_ATTACH, &cgroup, fd.as_raw_fd(), BPF_F_ALLOW_MULTI)
        .map_err(bpf_err("BPF_PROG_ATTACH"))?;
    for id in old {
        let mut attr = [0u8; 12];
        put_u32(&mut attr, 0, id);
        let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
            Ok(fd) => owned(fd).map_err(bpf_err("BPF_PROG_GET_FD_BY_ID"))?,
            // Detached meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("BPF_PROG_GET_FD_BY_ID")(e)),
        };
        match prog_attach(BPF_PROG_DETACH, &cgroup, old_fd.as_raw_fd(), 0) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err("BPF_PROG_DETACH")(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{rules_from_spec, ACC_ALL};
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    /// Run `prog` on a bpf_cgroup_dev_ctx, supporting exactly the instructions `compile` emits.
    fn run(prog: &[Insn], dev_type: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access << 16) | dev_type) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                AND_K => r[dst] &= imm,
                RSH_K => r[dst] >>= imm,
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = imm,
                JNE_K if r[dst] != imm => pc += i.off as usize,
                JEQ_K if r[dst] == imm => pc += i.off as usize,
                JNE_K | JEQ_K => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    /// What the v1 kernel controller would decide for the same effective state.
    fn expected(eff: &Effective, typ: DevType, access: u8, major: u32, minor: u32) -> bool {
        let matches = |e: &Rule| {
            (e.typ == DevType::All || e.typ == typ)
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        };
        if eff.default_allow {
            !eff.exceptions
                .iter()
                .any(|e| matches(e) && e.access & access != 0)
        } else {
            eff.exceptions
                .iter()
                .any(|e| matches(e) && access & !e.access == 0)
        }
    }

    fn check_all(eff: &Effective) {
        let prog = compile(eff);
        for (typ, t) in [
            (DevType::Char, DEVCG_DEV_CHAR),
            (DevType::Block, DEVCG_DEV_BLOCK),
        ] {
            for access in 1..=ACC_ALL {
                for (major, minor) in [(1, 3), (1, 11), (5, 1), (136, 7), (8, 0), (10, 200)] {
                    let got = run(&prog, t, kernel_access(access), major, minor) == 1;
                    assert_eq!(
                        got,
                        expected(eff, typ, access, major, minor),
                        "{typ:?} {major}:{minor} access {access} with {eff:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn program_agrees_with_the_rules() {
        let rule = |allow: bool, typ: LinuxDeviceType, major: i64, minor: i64, access: &str| {
            LinuxDeviceCgroupBuilder::default()
                .allow(allow)
                .typ(typ)
                .major(major)
                .minor(minor)
                .access(access)
                .build()
                .unwrap()
        };
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        let allow_all = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .build()
            .unwrap();
        let specs = vec![
            vec![deny_all.clone()],
            vec![
                deny_all,
                rule(true, LinuxDeviceType::C, 1, 11, "r"),
                rule(true, LinuxDeviceType::B, 8, -1, "rw"),
            ],
            vec![
                allow_all,
                rule(false, LinuxDeviceType::C, 1, 11, "w"),
                rule(false, LinuxDeviceType::B, 8, 0, "rwm"),
            ],
        ];
        for spec in specs {
            let eff = Effective::from_rules(&rules_from_spec(Some(&spec)).unwrap());
            check_all(&eff);
        }
    }
}
