//! Classic BPF opcodes and a backward-building assembler.
//!
//! Programs are built from the end towards the start: every jump target is already placed when
//! a jump is emitted, so offsets are known at once, and a conditional jump whose target lies
//! more than 255 instructions ahead is routed through an inserted `ja` (32-bit offset).

use libc::sock_filter;

pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;

pub const BPF_W: u16 = 0x00;
pub const BPF_IMM: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_MEM: u16 = 0x60;

pub const BPF_AND: u16 = 0x50;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_OR: u16 = 0x40;
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;

pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;

pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
pub const BPF_A: u16 = 0x10;

pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;

/// The kernel refuses longer programs (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// The high half of a 64-bit argument value, as the filter compares it (32-bit words).
pub const fn hi32(v: u64) -> u32 {
    // The shift leaves 32 bits: nothing is cut.
    #[allow(clippy::cast_possible_truncation)]
    let h = (v >> 32) as u32;
    h
}

/// The low half of a 64-bit argument value: cutting the high half is the point.
pub const fn lo32(v: u64) -> u32 {
    #[allow(clippy::cast_possible_truncation)]
    let l = v as u32;
    l
}

/// A jump offset: programs are at most MAX_INSNS long (the compiler checks), so any
/// distance within one fits.
fn offset32(off: usize) -> u32 {
    u32::try_from(off).expect("jump offset within a program of at most MAX_INSNS")
}

/// Offsets into `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
/// Low half of argument `i` (x86 is little-endian); the high half is at +4.
pub const fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}
pub const fn off_arg_hi(i: u8) -> u32 {
    off_arg_lo(i) + 4
}

pub const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A position in a program under construction, counted from its end: the instruction pushed
/// n-th (1-based) has label n. Labels stay valid while more code is prepended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(usize);

impl Label {
    /// 1-based position counted from the end of the program.
    pub fn pos(self) -> usize {
        self.0
    }
}

/// Conditional jumps the assembler can emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
}

impl Cond {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cond::Eq => BPF_JEQ,
                Cond::Gt => BPF_JGT,
                Cond::Ge => BPF_JGE,
                Cond::Set => BPF_JSET,
            }
    }
}

#[derive(Default)]
pub struct Assembler {
    /// Instructions in reverse program order.
    rev: Vec<sock_filter>,
}

impl Assembler {
    pub fn new() -> Self {
        Self {
            rev: Vec::with_capacity(1024),
        }
    }

    pub fn len(&self) -> usize {
        self.rev.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rev.is_empty()
    }

    /// The most recently pushed instruction: what the next pushed one falls through to.
    pub fn here(&self) -> Label {
        Label(self.rev.len())
    }

    fn push(&mut self, insn: sock_filter) -> Label {
        self.rev.push(insn);
        self.here()
    }

    pub fn stmt(&mut self, code: u16, k: u32) -> Label {
        self.push(stmt(code, k))
    }

    pub fn ret(&mut self, action: u32) -> Label {
        self.stmt(BPF_RET | BPF_K, action)
    }

    pub fn load_abs(&mut self, offset: u32) -> Label {
        self.stmt(BPF_LD | BPF_W | BPF_ABS, offset)
    }

    /// Places `next` right after the code about to be pushed: a `ja` unless it already is.
    pub fn goto(&mut self, target: Label) -> Label {
        if target == self.here() {
            return target;
        }
        let off = self.offset_from_next(target);
        self.push(stmt(BPF_JMP | BPF_JA, offset32(off)))
    }

    fn offset_from_next(&self, target: Label) -> usize {
        let next = self.rev.len() + 1;
        debug_assert!(target.0 < next, "jump target must be already placed");
        next - target.0 - 1
    }

    /// `if (A <cond> k) goto jt else goto jf`.
    pub fn jump(&mut self, cond: Cond, k: u32, jt: Label, jf: Label) -> Label {
        let mut jt = jt;
        let mut jf = jf;
        // A trampoline pushed now lands directly after the jump, so its own offset is 0 or 1;
        // it moves the other target one further, which may then need one too.
        let mut far_t = self.offset_from_next(jt) > 255;
        let far_f = self.offset_from_next(jf) > 255
            || (far_t && jf != jt && self.offset_from_next(jf) == 255);
        far_t = far_t || (far_f && jt != jf && self.offset_from_next(jt) == 255);
        if far_t {
            jt = self.goto_forced(jt);
        }
        if far_f {
            jf = if jf == jt { jt } else { self.goto_forced(jf) };
        }
        let t = self.offset_from_next(jt);
        let f = self.offset_from_next(jf);
        debug_assert!(t <= 255 && f <= 255);
        self.push(sock_filter {
            code: cond.code(),
            jt: u8::try_from(t).expect("trampolined above when over 255"),
            jf: u8::try_from(f).expect("trampolined above when over 255"),
            k,
        })
    }

    fn goto_forced(&mut self, target: Label) -> Label {
        let off = self.offset_from_next(target);
        self.push(stmt(BPF_JMP | BPF_JA, offset32(off)))
    }

    /// The program in execution order.
    pub fn finish(mut self) -> Vec<sock_filter> {
        self.rev.reverse();
        self.rev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_conditional_jump_goes_through_trampoline() {
        let mut a = Assembler::new();
        let allow = a.ret(libc::SECCOMP_RET_ALLOW);
        for _ in 0..300 {
            a.ret(libc::SECCOMP_RET_KILL_THREAD);
        }
        let deny = a.here();
        a.jump(Cond::Eq, 7, allow, deny);
        a.load_abs(OFF_NR);
        let prog = a.finish();
        assert_eq!(prog.len(), 304);
        // ld, jeq (to trampoline at +0 / deny at +1), ja allow, ...
        assert_eq!(prog[1].code, BPF_JMP | BPF_JEQ);
        assert_eq!(prog[1].jt, 0);
        assert_eq!(prog[1].jf, 1);
        assert_eq!(prog[2].code, BPF_JMP | BPF_JA);
        assert_eq!(3 + prog[2].k as usize, 303);
    }

    #[test]
    fn trampoline_for_one_target_pushing_the_other_out_of_reach() {
        for far_true in [true, false] {
            let mut a = Assembler::new();
            let far = a.ret(libc::SECCOMP_RET_ALLOW);
            for _ in 0..300 {
                a.ret(libc::SECCOMP_RET_KILL_THREAD);
            }
            // 255 instructions ahead of the jump: in reach until a trampoline comes between.
            let edge = a.ret(libc::SECCOMP_RET_TRAP);
            for _ in 0..254 {
                a.ret(libc::SECCOMP_RET_KILL_THREAD);
            }
            let (jt, jf) = if far_true { (far, edge) } else { (edge, far) };
            a.jump(Cond::Eq, 7, jt, jf);
            a.load_abs(OFF_NR);
            let prog = a.finish();
            let d = |nr| crate::seccomp::bpf_interpreter::SeccompData {
                nr,
                arch: 0,
                instruction_pointer: 0,
                args: [0; 6],
            };
            let run = |nr| crate::seccomp::bpf_interpreter::run(&prog, &d(nr)).unwrap();
            let (t, f) = (run(7), run(8));
            let want_t = if far_true {
                libc::SECCOMP_RET_ALLOW
            } else {
                libc::SECCOMP_RET_TRAP
            };
            let want_f = if far_true {
                libc::SECCOMP_RET_TRAP
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!((t, f), (want_t, want_f), "far_true {far_true}");
        }
    }
}
