//! Code generation: a [`Policy`] becomes one cBPF program with architecture dispatch.
//!
//! Per architecture section, syscalls without argument conditions are dispatched either by
//! a comparison tree the kernel's action cache can emulate ([`Layout::CachePrefixBitmap`]: so
//! unconditionally allowed syscalls never run the filter again) or by a bitmap lookup
//! ([`Layout::Bitmap`]: `nr >> 5` selects a 32-bit word through a jump tree, bit `nr & 31` is
//! tested). Syscalls with argument conditions get their own comparison chains on the 32-bit
//! halves of each argument, reached first: right after the architecture check, by a tree over
//! their numbers alone (the kernel's cache cannot skip the filter for them, so their path is
//! the one every call of theirs runs; the cached ones never run it).

use super::bpf::*;
use super::policy::{
    is_permissive, ArgCond, CmpOp, CondRule, Policy, SyscallRules, SECCOMP_RET_ERRNO_ENOSYS,
};
use super::rule_tree::{Node as TreeNode, NodeOp, Tree};
use super::syscall_table::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::SeccompError;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// How unconditional syscalls are dispatched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Allowed syscalls (and the entry to argument chains) through a JGE/JEQ tree the kernel's
    /// seccomp cache can prove; the bitmap for the remaining unconditional actions.
    #[default]
    CachePrefixBitmap,
    /// Allowed syscalls through a bitmap lookup (never cached by the kernel).
    Bitmap,
}

/// What a filter does on an architecture not in the profile (libseccomp's and so runc's
/// default "bad arch" action).
pub const BAD_ARCH_ACTION: u32 = libc::SECCOMP_RET_KILL_THREAD;

/// Argument-filtered syscalls most programs call most often (terminals and event loops,
/// JITs), tested one by one ahead of the tree over the others.
const FREQUENT: &[&str] = &["ioctl", "mprotect"];

/// Groups of at least this many syscalls sharing an action use a bitmap, smaller ones a tree.
const BITMAP_MIN_GROUP: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Target {
    At(Label),
    Ret(u32),
}

struct Gen {
    asm: Assembler,
    rets: HashMap<u32, Label, std::hash::BuildHasherDefault<super::policy::Fnv>>,
    /// Argument tests of rule trees by entry label: (offset, mask) the entry loads A with,
    /// and the label of the test itself (to jump past the load when A already holds it).
    loaded: HashMap<Label, (u32, u32, Label)>,
    /// Rule-tree tests already emitted, by what they do: (offset, mask, op, datum, jt, jf).
    /// Syscalls whose rules end alike (the same argument test leading to the same verdicts)
    /// share that code, as libseccomp's generator does; without it a profile with argument
    /// rules on every syscall outgrows the kernel's 4096 instructions where libseccomp's fits.
    nodes: HashMap<NodeKey, Target>,
}

type NodeKey = (u32, u32, u8, u32, Target, Target);

impl Gen {
    /// A label returning `action`, reusing a nearby one. Only called right before pushing the
    /// jump that uses it, so a freshly pushed `ret` is never fallen into.
    fn resolve(&mut self, t: Target) -> Label {
        match t {
            Target::At(l) => l,
            Target::Ret(action) => {
                let next = self.asm.len() + 1;
                if let Some(&l) = self.rets.get(&action) {
                    // Reuse only well within a conditional jump's 255 reach, so reuse never
                    // costs a trampoline.
                    if next - l.pos() < 200 {
                        return l;
                    }
                }
                let l = self.asm.ret(action);
                self.rets.insert(action, l);
                l
            }
        }
    }

    fn jump(&mut self, cond: Cond, k: u32, jt: Target, jf: Target) -> Label {
        // A conditional jump whose branches agree is just that branch.
        if jt == jf {
            return self.resolve(jt);
        }
        let jt = self.resolve(jt);
        let jf = self.resolve(jf);
        self.asm.jump(cond, k, jt, jf)
    }

    /// Makes `t` the most recently pushed code, so that what is pushed next falls into it.
    fn entry(&mut self, t: Target) -> Label {
        match t {
            Target::At(l) => self.asm.goto(l),
            Target::Ret(a) => self.asm.ret(a),
        }
    }

    /// A search tree over disjoint sorted ranges of A (`lo..=hi` known to hold A).
    fn tree(&mut self, e: &[(u32, u32, Target)], lo: u32, hi: u32, miss: Target) -> Target {
        match e.len() {
            0 => miss,
            1 => {
                let (a, b, t) = e[0];
                let (cover_lo, cover_hi) = (a <= lo, b >= hi);
                Target::At(match (cover_lo, cover_hi) {
                    (true, true) => return t,
                    _ if a == b => self.jump(Cond::Eq, a, t, miss),
                    (true, false) => self.jump(Cond::Gt, b, miss, t),
                    (false, true) => self.jump(Cond::Ge, a, t, miss),
                    (false, false) => {
                        let inner = self.jump(Cond::Gt, b, miss, t);
                        self.jump(Cond::Ge, a, Target::At(inner), miss)
                    }
                })
            }
            n => {
                let m = n / 2;
                let key = e[m].0;
                let right = self.tree(&e[m..], key, hi, miss);
                let left = self.tree(&e[..m], lo, key - 1, miss);
                Target::At(self.jump(Cond::Ge, key, right, left))
            }
        }
    }

    /// Tests whether the syscall number is in `set` by bitmap lookup; clobbers A and X.
    fn bitmap(&mut self, set: &[u32], nr_mask: u32, hit: Target, miss: Target) -> Label {
        if hit == miss || set.is_empty() {
            return self.entry(miss);
        }
        let mut words: BTreeMap<u32, u32> = BTreeMap::new();
        for &nr in set {
            let n = nr & nr_mask;
            *words.entry(n >> 5).or_default() |= 1 << (n & 31);
        }
        let test_hit = self.jump(Cond::Set, 1, hit, miss);
        let test = self.asm.stmt(BPF_ALU | BPF_RSH | BPF_X, 0);
        debug_assert_eq!(test.pos(), test_hit.pos() + 1);
        let mut entries = Vec::with_capacity(words.len());
        for (&idx, &w) in words.iter().rev() {
            self.asm.goto(test);
            let l = self.asm.stmt(BPF_LD | BPF_IMM, w);
            entries.push((idx, idx, Target::At(l)));
        }
        entries.reverse();
        let dispatch = self.tree(&entries, 0, u32::MAX >> 5, miss);
        self.entry(dispatch);
        self.asm.stmt(BPF_ALU | BPF_RSH | BPF_K, 5);
        if nr_mask != u32::MAX {
            self.asm.stmt(BPF_ALU | BPF_AND | BPF_K, nr_mask);
        }
        self.asm.load_abs(OFF_NR);
        self.asm.stmt(BPF_MISC | BPF_TAX, 0);
        self.asm.stmt(BPF_ALU | BPF_AND | BPF_K, 31);
        self.asm.load_abs(OFF_NR)
    }

    /// Code testing one argument condition.
    fn cond(&mut self, c: &ArgCond, bits32: bool, pass: Target, fail: Target) -> Label {
        if pass == fail {
            return self.entry(pass);
        }
        let (pass, fail, op) = match c.op {
            CmpOp::Ne => (fail, pass, CmpOp::Eq),
            CmpOp::Lt => (fail, pass, CmpOp::Ge),
            CmpOp::Le => (fail, pass, CmpOp::Gt),
            op => (pass, fail, op),
        };
        let (v_hi, v_lo) = (hi32(c.value), lo32(c.value));
        let (w_hi, w_lo) = (hi32(c.value_two), lo32(c.value_two));
        let lo = off_arg_lo(c.index);
        let hi = off_arg_hi(c.index);
        // Low half.
        let lo_entry = match op {
            CmpOp::Eq => self.jump(Cond::Eq, v_lo, pass, fail),
            CmpOp::Gt => self.jump(Cond::Gt, v_lo, pass, fail),
            CmpOp::Ge => self.jump(Cond::Ge, v_lo, pass, fail),
            _ => {
                let test = self.jump(Cond::Eq, w_lo, pass, fail);
                self.mask(v_lo, test)
            }
        };
        debug_assert_eq!(lo_entry, self.asm.here());
        let lo_entry = self.asm.load_abs(lo);
        if bits32 {
            return lo_entry;
        }
        let next = Target::At(lo_entry);
        // High half decides unless equal.
        match op {
            CmpOp::Eq => {
                self.jump(Cond::Eq, v_hi, next, fail);
            }
            CmpOp::Gt | CmpOp::Ge => {
                let eq = self.jump(Cond::Eq, v_hi, next, fail);
                self.jump(Cond::Gt, v_hi, pass, Target::At(eq));
            }
            _ => {
                if v_hi == 0 && w_hi == 0 {
                    return lo_entry;
                }
                let test = self.jump(Cond::Eq, w_hi, next, fail);
                self.mask(v_hi, test);
            }
        }
        self.asm.load_abs(hi)
    }

    /// `A &= mask` before `test`; nothing for a mask keeping every bit.
    fn mask(&mut self, mask: u32, test: Label) -> Label {
        if mask == u32::MAX {
            test
        } else {
            self.asm.stmt(BPF_ALU | BPF_AND | BPF_K, mask)
        }
    }

    /// The argument chain of one syscall: built-in rules in order, then the fallback; a
    /// profile's rules as libseccomp's tree.
    fn chain(&mut self, r: &SyscallRules, bits32: bool, default_action: u32) -> Label {
        if !r.first_match {
            let t = match r.unconditional {
                Some(a) => Target::Ret(a),
                None => {
                    let tree = Tree::build(&r.conditional, bits32)
                        .expect("conflicting rules are refused by Policy::from_spec");
                    match (tree.root, tree.action) {
                        (Some(root), _) => {
                            let mut memo = HashMap::new();
                            self.level(&tree, root, Target::Ret(default_action), &mut memo)
                        }
                        (None, a) => Target::Ret(a.unwrap_or(default_action)),
                    }
                }
            };
            return self.entry(t);
        }
        let mut next = Target::Ret(r.unconditional.unwrap_or(default_action));
        for piece in pieces(&r.conditional, bits32).iter().rev() {
            next = Target::At(match piece {
                Piece::Rule(rule) => {
                    let mut pass = Target::Ret(rule.action);
                    for c in rule.conds.iter().rev() {
                        pass = Target::At(self.cond(c, bits32, pass, next));
                    }
                    self.entry(pass)
                }
                Piece::Set { key, values } => self.value_set(key, values, next),
            });
        }
        self.entry(next)
    }

    /// One level of a rule tree: its nodes in order, each falling back to the next, the
    /// last to `fallback`. Shared subtrees are emitted once per fallback.
    fn level(
        &mut self,
        t: &Tree,
        any: usize,
        fallback: Target,
        memo: &mut HashMap<(usize, Target), Target>,
    ) -> Target {
        let start = t.level_start(any);
        if let Some(&done) = memo.get(&(start, fallback)) {
            return done;
        }
        let mut nodes = Vec::new();
        let mut c = Some(start);
        while let Some(i) = c {
            nodes.push(i);
            c = t.nodes[i].lvl_nxt;
        }
        let mut next = fallback;
        for &i in nodes.iter().rev() {
            let n = &t.nodes[i];
            let jt = match (n.nxt_t, n.act_t()) {
                (Some(l), _) => self.level(t, l, next, memo),
                (None, Some(a)) => Target::Ret(a),
                (None, None) => next,
            };
            let jf = match (n.nxt_f, n.act_f()) {
                (Some(l), _) => self.level(t, l, next, memo),
                (None, Some(a)) => Target::Ret(a),
                (None, None) => next,
            };
            next = self.tree_node(n, jt, jf);
        }
        memo.insert((start, fallback), next);
        next
    }

    /// One 32-bit test of a rule tree.
    fn tree_node(&mut self, n: &TreeNode, jt: Target, jf: Target) -> Target {
        if jt == jf {
            return jt;
        }
        let off = if n.hi {
            off_arg_hi(n.arg)
        } else {
            off_arg_lo(n.arg)
        };
        // A target testing the same word under the same mask needs no reload.
        let skip = |g: &Self, t: Target| match t {
            Target::At(l) => match g.loaded.get(&l) {
                Some(&(o, m, test)) if o == off && m == n.mask => Target::At(test),
                _ => t,
            },
            r => r,
        };
        let (jt, jf) = (skip(self, jt), skip(self, jf));
        let (cond, op) = match n.op {
            NodeOp::Eq | NodeOp::MaskedEq => (Cond::Eq, 0),
            NodeOp::Gt => (Cond::Gt, 1),
            NodeOp::Ge => (Cond::Ge, 2),
        };
        let key = (off, n.mask, op, n.datum, jt, jf);
        if let Some(&done) = self.nodes.get(&key) {
            return done;
        }
        let test = self.jump(cond, n.datum, jt, jf);
        if n.mask != u32::MAX {
            self.asm.stmt(BPF_ALU | BPF_AND | BPF_K, n.mask);
        }
        let entry = self.asm.load_abs(off);
        self.loaded.insert(entry, (off, n.mask, test));
        self.nodes.insert(key, Target::At(entry));
        Target::At(entry)
    }

    /// `arg ∈ values` by a search tree on the low half (after checking the high half).
    fn value_set(&mut self, key: &SetKey, values: &[u32], fail: Target) -> Label {
        let pass = Target::Ret(key.action);
        let items = values.iter().map(|&v| (v, pass)).collect();
        let t = self.tree(&ranges(items), 0, u32::MAX, fail);
        self.entry(t);
        let lo = self.asm.load_abs(off_arg_lo(key.index));
        match key.hi {
            None => lo,
            Some(h) => {
                self.jump(Cond::Eq, h, Target::At(lo), fail);
                self.asm.load_abs(off_arg_hi(key.index))
            }
        }
    }
}

/// Consecutive single-condition equality rules on one argument with one action: "any of".
#[derive(Clone, Copy, PartialEq, Eq)]
struct SetKey {
    index: u8,
    action: u32,
    /// The high half the argument must have; `None`: only the low half is compared.
    hi: Option<u32>,
}

enum Piece<'a> {
    Rule(&'a CondRule),
    Set { key: SetKey, values: Vec<u32> },
}

/// Smaller sets stay linear: a tree saves nothing there.
const VALUE_SET_MIN: usize = 4;

fn set_member(rule: &CondRule, bits32: bool) -> Option<(SetKey, u32)> {
    let [c] = rule.conds.as_slice() else {
        return None;
    };
    let key = |hi| SetKey {
        index: c.index,
        action: rule.action,
        hi,
    };
    match c.op {
        CmpOp::Eq if bits32 => Some((key(None), lo32(c.value))),
        CmpOp::Eq => Some((key(Some(hi32(c.value))), lo32(c.value))),
        CmpOp::MaskedEq
            if lo32(c.value) == u32::MAX
                && (bits32 || (c.value >> 32 == 0 && c.value_two >> 32 == 0)) =>
        {
            Some((key(None), lo32(c.value_two)))
        }
        _ => None,
    }
}

fn pieces(rules: &[CondRule], bits32: bool) -> Vec<Piece<'_>> {
    let mut out: Vec<Piece<'_>> = Vec::new();
    let mut i = 0;
    while i < rules.len() {
        if let Some((key, v)) = set_member(&rules[i], bits32) {
            let mut values = vec![v];
            let mut j = i + 1;
            while let Some((k, v)) = rules.get(j).and_then(|r| set_member(r, bits32)) {
                if k != key {
                    break;
                }
                values.push(v);
                j += 1;
            }
            if values.len() >= VALUE_SET_MIN {
                values.sort_unstable();
                values.dedup();
                out.push(Piece::Set { key, values });
                i = j;
                continue;
            }
        }
        out.push(Piece::Rule(&rules[i]));
        i += 1;
    }
    out
}

/// Consecutive numbers with the same target merged into ranges.
fn ranges(mut items: Vec<(u32, Target)>) -> Vec<(u32, u32, Target)> {
    items.sort_unstable_by_key(|(nr, _)| *nr);
    let mut out: Vec<(u32, u32, Target)> = Vec::new();
    for (nr, t) in items {
        match out.last_mut() {
            Some((_, hi, lt)) if *lt == t && hi.checked_add(1) == Some(nr) => *hi = nr,
            _ => out.push((nr, nr, t)),
        }
    }
    out
}

/// One architecture's rules by syscall number.
struct ArchPlan<'a> {
    arch: Arch,
    /// Sorted by number.
    by_nr: Vec<(u32, Cow<'a, SyscallRules>)>,
}

impl<'a> ArchPlan<'a> {
    fn new(policy: &'a Policy, arch: Arch) -> Self {
        let mut list: Vec<(u32, &'a str, &'a SyscallRules)> =
            Vec::with_capacity(policy.rules.len());
        for (name, rules) in &policy.rules {
            let nr = if rules.nrs.iter().any(Option::is_some) {
                rules.nrs[arch.index()]
            } else {
                arch.resolve(name)
            };
            if let Some(nr) = nr {
                list.push((nr, name, rules));
            }
        }
        // By number; names order aliases so the program does not depend on hash order.
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let mut by_nr: Vec<(u32, Cow<'a, SyscallRules>)> = Vec::with_capacity(list.len());
        for (nr, _, rules) in list {
            match by_nr.last_mut() {
                // Two names for one number (aliases): both sets of rules apply.
                Some((last, e)) if *last == nr => {
                    let e = e.to_mut();
                    e.conditional.extend(rules.conditional.iter().cloned());
                    if e.unconditional.is_none() {
                        e.unconditional = rules.unconditional;
                    }
                }
                _ => by_nr.push((nr, Cow::Borrowed(rules))),
            }
        }
        Self { arch, by_nr }
    }

    /// The highest number the profile names (runc's -ENOSYS stub boundary).
    fn max_nr(&self) -> Option<u32> {
        self.by_nr.last().map(|(nr, _)| *nr)
    }
}

impl Gen {
    /// An architecture's dispatch of the syscalls without argument conditions (those are
    /// `hoisted`); expects A = syscall number.
    fn body(&mut self, plan: &ArchPlan, layout: Layout, default: u32) -> Label {
        let nr_mask = if plan.arch == Arch::X32 {
            !X32_SYSCALL_BIT
        } else {
            u32::MAX
        };
        let mut allow = Vec::new();
        let mut others: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (nr, r) in plan.by_nr.iter().rev() {
            let nr = *nr;
            if r.conditional.is_empty() {
                match r.unconditional {
                    Some(libc::SECCOMP_RET_ALLOW) => allow.push(nr),
                    Some(a) if a != default => others.entry(a).or_default().push(nr),
                    _ => {}
                }
            }
        }
        // Rare verdicts after the frequent ones: the biggest group is tested first.
        let mut groups: Vec<(u32, Vec<u32>)> = others.into_iter().collect();
        groups.sort_by_key(|(a, nrs)| (nrs.len(), *a));
        let mut next = Target::Ret(default);
        for (action, nrs) in groups {
            next = Target::At(if nrs.len() >= BITMAP_MIN_GROUP {
                self.bitmap(&nrs, nr_mask, Target::Ret(action), next)
            } else {
                let items = nrs.iter().map(|&n| (n, Target::Ret(action))).collect();
                let t = self.tree(&ranges(items), 0, u32::MAX, next);
                self.entry(t);
                self.asm.load_abs(OFF_NR)
            });
        }
        match layout {
            Layout::CachePrefixBitmap => {
                let items: Vec<(u32, Target)> = allow
                    .iter()
                    .map(|&n| (n, Target::Ret(libc::SECCOMP_RET_ALLOW)))
                    .collect();
                let t = self.tree(&ranges(items), 0, u32::MAX, next);
                self.entry(t)
            }
            Layout::Bitmap => {
                self.bitmap(&allow, nr_mask, Target::Ret(libc::SECCOMP_RET_ALLOW), next)
            }
        }
    }

    /// The syscalls with argument conditions, tested before `rest` (everything else of the
    /// architecture, placed right after): the [`FREQUENT`] ones by one comparison each, then
    /// a tree over the others' exact numbers leads to their chains; any other number goes on
    /// to `rest` unchanged. Expects and keeps A = number.
    fn hoisted(&mut self, plan: &ArchPlan, default: u32, rest: Label) -> Label {
        let bits32 = plan.arch.args_are_32bit();
        let frequent: Vec<u32> = FREQUENT
            .iter()
            .filter_map(|name| plan.arch.resolve(name))
            .collect();
        let mut chains = Vec::new();
        let mut first = Vec::new();
        for (nr, r) in plan.by_nr.iter().rev() {
            if !r.conditional.is_empty() {
                let chain = (*nr, Target::At(self.chain(r, bits32, default)));
                match frequent.iter().position(|f| f == nr) {
                    Some(rank) => first.push((rank, chain)),
                    None => chains.push(chain),
                }
            }
        }
        let mut t = self.tree(&ranges(chains), 0, u32::MAX, Target::At(rest));
        // The most frequent is tested first, so pushed last.
        first.sort_unstable_by_key(|&(rank, _)| std::cmp::Reverse(rank));
        for (_, (nr, chain)) in first {
            t = Target::At(self.jump(Cond::Eq, nr, chain, t));
        }
        self.entry(t)
    }

    /// `body` behind runc's -ENOSYS stub: numbers above everything the profile names are
    /// syscalls newer than the profile, which should look unimplemented, not denied. As
    /// runc, only on architectures the profile lists (none listed: no stub).
    fn stubbed(&mut self, plan: &ArchPlan, body: Label, stub: bool, listed: &[Arch]) -> Label {
        match plan.max_nr() {
            Some(max) if stub && listed.contains(&plan.arch) => self.jump(
                Cond::Gt,
                max,
                Target::Ret(SECCOMP_RET_ERRNO_ENOSYS),
                Target::At(body),
            ),
            _ => body,
        }
    }
}

/// Generates the program for `policy`.
pub fn generate(
    policy: &Policy,
    layout: Layout,
    enosys_stub: bool,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let default = policy.default_action;
    let stub = enosys_stub
        && !is_permissive(default)
        && policy.default_errno_ret != Some(libc::ENOSYS as u32);
    let mut g = Gen {
        asm: Assembler::new(),
        rets: HashMap::default(),
        loaded: HashMap::new(),
        nodes: HashMap::new(),
    };
    let bad = Target::Ret(BAD_ARCH_ACTION);
    let has = |a: Arch| policy.arches.contains(&a);

    let sec86 = if has(Arch::X86) {
        let plan = ArchPlan::new(policy, Arch::X86);
        let body = g.body(&plan, layout, default);
        let rest = g.stubbed(&plan, body, stub, &policy.listed_arches);
        g.hoisted(&plan, default, rest);
        Some(g.asm.load_abs(OFF_NR))
    } else {
        None
    };
    let sec32 = if has(Arch::X32) {
        let plan = ArchPlan::new(policy, Arch::X32);
        let body = g.body(&plan, layout, default);
        let rest = g.stubbed(&plan, body, stub, &policy.listed_arches);
        Some(g.hoisted(&plan, default, rest))
    } else {
        None
    };
    let plan = ArchPlan::new(policy, Arch::X86_64);
    let body64 = g.body(&plan, layout, default);
    let stubbed64 = g.stubbed(&plan, body64, stub, &policy.listed_arches);
    match sec32 {
        Some(sec32) => {
            g.jump(
                Cond::Set,
                X32_SYSCALL_BIT,
                Target::At(sec32),
                Target::At(stubbed64),
            );
        }
        None => {
            // As libseccomp: x32 numbers on a filter without x32 are a bad arch, except -1
            // (a syscall a tracer skipped), which gets the normal verdict.
            let minus_one = g.jump(Cond::Eq, u32::MAX, Target::At(body64), bad);
            g.jump(
                Cond::Ge,
                X32_SYSCALL_BIT,
                Target::At(minus_one),
                Target::At(stubbed64),
            );
        }
    }
    // x86_64's argument-filtered syscalls before the x32 and stub checks: their exact numbers
    // are below the x32 bit and within the profile's, so those checks would pass them anyway.
    let rest64 = g.asm.here();
    g.hoisted(&plan, default, rest64);
    let sec64 = g.asm.load_abs(OFF_NR);
    let not64 = match sec86 {
        Some(l) => Target::At(g.jump(Cond::Eq, AUDIT_ARCH_I386, Target::At(l), bad)),
        None => bad,
    };
    g.jump(Cond::Eq, AUDIT_ARCH_X86_64, Target::At(sec64), not64);
    g.asm.load_abs(OFF_ARCH);

    let prog = g.asm.finish();
    if prog.len() > MAX_INSNS {
        return Err(SeccompError::ProgramTooLong {
            len: prog.len(),
            max: MAX_INSNS,
        });
    }
    Ok(prog)
}
