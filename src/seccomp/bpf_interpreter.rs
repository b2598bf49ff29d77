//! A classic-BPF interpreter with the kernel's seccomp rules, used to check compiled programs
//! (ours and libseccomp's) decision by decision without installing them.

use super::bpf::*;
use libc::sock_filter;

/// `struct seccomp_data` as the kernel hands it to a filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, off: u32) -> Option<u32> {
        let w = |v: u64, hi: bool| {
            if hi {
                super::bpf::hi32(v)
            } else {
                super::bpf::lo32(v)
            }
        };
        Some(match off {
            0 => self.nr as u32,
            4 => self.arch,
            8 => w(self.instruction_pointer, false),
            12 => w(self.instruction_pointer, true),
            16..=60 if off % 4 == 0 => {
                let i = ((off - 16) / 8) as usize;
                w(self.args[i], (off - 16) % 8 == 4)
            }
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BpfCheckError {
    #[error("program is empty")]
    Empty,
    #[error("program has {0} instructions; the kernel accepts at most {MAX_INSNS}")]
    TooLong(usize),
    #[error("instruction {0}: jump leaves the program")]
    JumpOutOfRange(usize),
    #[error("instruction {0}: opcode {1:#06x} is not allowed in a seccomp filter")]
    BadOpcode(usize, u16),
    #[error("instruction {0}: load from seccomp_data offset {1} is not an aligned word inside it")]
    BadLoad(usize, u32),
    #[error("instruction {0}: scratch memory index {1} out of range")]
    BadMem(usize, u32),
    #[error("last instruction is not a return")]
    NoFinalReturn,
    #[error("instruction {0}: division by constant zero")]
    DivByZero(usize),
}

/// The static checks the kernel makes (`bpf_check_classic` + `seccomp_check_filter`).
pub fn check(prog: &[sock_filter]) -> Result<(), BpfCheckError> {
    if prog.is_empty() {
        return Err(BpfCheckError::Empty);
    }
    if prog.len() > MAX_INSNS {
        return Err(BpfCheckError::TooLong(prog.len()));
    }
    for (pc, insn) in prog.iter().enumerate() {
        let class = insn.code & 0x07;
        match class {
            BPF_LD => match insn.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    if insn.k % 4 != 0 || insn.k >= 64 {
                        return Err(BpfCheckError::BadLoad(pc, insn.k));
                    }
                }
                c if c == BPF_LD | BPF_IMM || c == BPF_LD | BPF_W | 0x80 => {}
                c if c == BPF_LD | BPF_MEM => {
                    if insn.k >= 16 {
                        return Err(BpfCheckError::BadMem(pc, insn.k));
                    }
                }
                c => return Err(BpfCheckError::BadOpcode(pc, c)),
            },
            BPF_LDX => match insn.code {
                c if c == BPF_LDX | BPF_IMM || c == BPF_LDX | BPF_W | 0x80 => {}
                c if c == BPF_LDX | BPF_MEM => {
                    if insn.k >= 16 {
                        return Err(BpfCheckError::BadMem(pc, insn.k));
                    }
                }
                c => return Err(BpfCheckError::BadOpcode(pc, c)),
            },
            BPF_ST | BPF_STX => {
                if insn.code != class || insn.k >= 16 {
                    return Err(BpfCheckError::BadMem(pc, insn.k));
                }
            }
            BPF_ALU => {
                let op = insn.code & 0xf0;
                if !matches!(op, 0x00..=0xa0) || insn.code & 0x08 != 0 && op == 0x80 {
                    return Err(BpfCheckError::BadOpcode(pc, insn.code));
                }
                if (op == 0x30 || op == 0x90) && insn.code & BPF_X == 0 && insn.k == 0 {
                    return Err(BpfCheckError::DivByZero(pc));
                }
            }
            BPF_JMP => {
                let op = insn.code & 0xf0;
                let rest = prog.len() - pc - 1;
                if op == BPF_JA {
                    if insn.code != BPF_JMP | BPF_JA || insn.k as usize >= rest {
                        return Err(BpfCheckError::JumpOutOfRange(pc));
                    }
                } else {
                    if !matches!(op, BPF_JEQ | BPF_JGT | BPF_JGE | BPF_JSET) {
                        return Err(BpfCheckError::BadOpcode(pc, insn.code));
                    }
                    if insn.jt as usize >= rest || insn.jf as usize >= rest {
                        return Err(BpfCheckError::JumpOutOfRange(pc));
                    }
                }
            }
            BPF_RET => {
                if insn.code != BPF_RET | BPF_K && insn.code != BPF_RET | BPF_A {
                    return Err(BpfCheckError::BadOpcode(pc, insn.code));
                }
            }
            BPF_MISC => {
                if insn.code != BPF_MISC | BPF_TAX && insn.code != BPF_MISC | BPF_TXA {
                    return Err(BpfCheckError::BadOpcode(pc, insn.code));
                }
            }
            _ => return Err(BpfCheckError::BadOpcode(pc, insn.code)),
        }
    }
    let last = prog[prog.len() - 1];
    if last.code & 0x07 != BPF_RET {
        return Err(BpfCheckError::NoFinalReturn);
    }
    Ok(())
}

/// Runs a program and returns the filter's verdict (`SECCOMP_RET_*`). Only the executed
/// path is validated; [`check`] validates the whole program as the kernel does.
pub fn run(prog: &[sock_filter], data: &SeccompData) -> Result<u32, BpfCheckError> {
    run_counting(prog, data).map(|(ret, _)| ret)
}

/// Like [`run`], also returning how many instructions were executed.
pub fn run_counting(
    prog: &[sock_filter],
    data: &SeccompData,
) -> Result<(u32, usize), BpfCheckError> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        let insn = *prog
            .get(pc)
            .ok_or(BpfCheckError::JumpOutOfRange(pc.saturating_sub(1)))?;
        let indexes_mem = match insn.code & 0x07 {
            BPF_ST | BPF_STX => true,
            BPF_LD | BPF_LDX => insn.code & 0xe0 == BPF_MEM,
            _ => false,
        };
        if indexes_mem && insn.k >= 16 {
            return Err(BpfCheckError::BadMem(pc, insn.k));
        }
        steps += 1;
        pc += 1;
        let src = if insn.code & BPF_X != 0 { x } else { insn.k };
        match insn.code & 0x07 {
            BPF_LD => {
                a = match insn.code {
                    c if c == BPF_LD | BPF_W | BPF_ABS => data
                        .word(insn.k)
                        .ok_or(BpfCheckError::BadLoad(pc - 1, insn.k))?,
                    c if c == BPF_LD | BPF_IMM => insn.k,
                    c if c == BPF_LD | BPF_MEM => mem[insn.k as usize],
                    _ => 64,
                }
            }
            BPF_LDX => {
                x = match insn.code {
                    c if c == BPF_LDX | BPF_IMM => insn.k,
                    c if c == BPF_LDX | BPF_MEM => mem[insn.k as usize],
                    _ => 64,
                }
            }
            BPF_ST => mem[insn.k as usize] = a,
            BPF_STX => mem[insn.k as usize] = x,
            BPF_ALU => {
                a = match insn.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => a.checked_div(src).unwrap_or(0),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(src).unwrap_or(0),
                    _ => a ^ src,
                };
                // The kernel aborts a program dividing by a zero X with a 0 (kill) verdict.
                if matches!(insn.code & 0xf0, 0x30 | 0x90) && src == 0 {
                    return Ok((0, steps));
                }
            }
            BPF_JMP => {
                let op = insn.code & 0xf0;
                if op == BPF_JA {
                    pc += insn.k as usize;
                } else {
                    let taken = match op {
                        BPF_JEQ => a == src,
                        BPF_JGT => a > src,
                        BPF_JGE => a >= src,
                        _ => a & src != 0,
                    };
                    pc += if taken { insn.jt } else { insn.jf } as usize;
                }
            }
            BPF_RET => {
                return Ok((if insn.code & BPF_A != 0 { a } else { insn.k }, steps));
            }
            _ => {
                if insn.code == BPF_MISC | BPF_TAX {
                    x = a;
                } else {
                    a = x;
                }
            }
        }
    }
}

/// Whether the kernel's seccomp action cache (Linux ≥ 5.11) can prove `nr` always allowed on
/// `arch`: its emulator follows only loads of nr/arch, AND with a constant, constant
/// JEQ/JGE/JGT/JSET, JA and RET, and gives up on anything else.
pub fn cache_emulates_allow(prog: &[sock_filter], arch: u32, nr: u32) -> bool {
    let mut a = 0u32;
    let mut pc = 0usize;
    while pc < prog.len() {
        let insn = prog[pc];
        pc += 1;
        match insn.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => match insn.k {
                OFF_NR => a = nr,
                OFF_ARCH => a = arch,
                _ => return false,
            },
            c if c == BPF_RET | BPF_K => return insn.k == libc::SECCOMP_RET_ALLOW,
            c if c == BPF_JMP | BPF_JA => pc += insn.k as usize,
            c if c == BPF_JMP | BPF_JEQ | BPF_K
                || c == BPF_JMP | BPF_JGE | BPF_K
                || c == BPF_JMP | BPF_JGT | BPF_K
                || c == BPF_JMP | BPF_JSET | BPF_K =>
            {
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == insn.k,
                    BPF_JGE => a >= insn.k,
                    BPF_JGT => a > insn.k,
                    _ => a & insn.k != 0,
                };
                pc += if taken { insn.jt } else { insn.jf } as usize;
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= insn.k,
            _ => return false,
        }
    }
    false
}
