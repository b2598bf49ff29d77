//! The precedence libseccomp (and so runc) gives a syscall's argument rules, reproduced.
//!
//! libseccomp does not try a syscall's rules in the order they were added. Each rule becomes
//! a chain of 32-bit comparisons (arguments in ascending index, a 64-bit comparison as a
//! high-word and a low-word test); the chains are merged into one tree whose levels keep
//! their nodes sorted: higher argument index first, the high word before the low word,
//! equality tests before `<`/`<=` before `>`/`>=`, then larger values first (smaller first
//! for `<`/`<=`). Evaluation walks a level in that order: a node that holds leads into its
//! subtree (or returns its action), and a subtree that decides nothing falls back to the
//! next node of the level above; what no node decides gets the default action. Merging
//! also prunes chains a shorter one with the same action covers, and refuses two rules that
//! give one condition different actions.
//!
//! This module rebuilds that tree with the same merge steps, node reference counts
//! included (they decide which levels the pruning frees), so that the compiler emits, and
//! [`Tree::decide`] evaluates, exactly libseccomp's verdicts.

use super::bpf::{hi32, lo32};
use super::policy::{CmpOp, CondRule};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeOp {
    Eq,
    MaskedEq,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub arg: u8,
    /// Compares the high word of a 64-bit argument.
    pub hi: bool,
    pub op: NodeOp,
    op_orig: CmpOp,
    pub mask: u32,
    pub datum: u32,
    datum_full: u64,
    act_t_flg: bool,
    act_t: u32,
    act_f_flg: bool,
    act_f: u32,
    pub nxt_t: Option<usize>,
    pub nxt_f: Option<usize>,
    lvl_prv: Option<usize>,
    pub lvl_nxt: Option<usize>,
    refcnt: u32,
}

impl Node {
    pub fn act_t(&self) -> Option<u32> {
        self.act_t_flg.then_some(self.act_t)
    }
    pub fn act_f(&self) -> Option<u32> {
        self.act_f_flg.then_some(self.act_f)
    }
    /// The action when the test holds (`side`) or fails.
    fn act(&self, side: bool) -> Option<u32> {
        if side {
            self.act_t()
        } else {
            self.act_f()
        }
    }
    /// The subtree the node leads to when its test holds (`side`) or fails.
    fn next(&self, side: bool) -> Option<usize> {
        if side {
            self.nxt_t
        } else {
            self.nxt_f
        }
    }
    /// Whether the node's comparison holds for argument value `arg`.
    pub fn holds(&self, arg: u64) -> bool {
        let half = if self.hi { hi32(arg) } else { lo32(arg) } & self.mask;
        match self.op {
            NodeOp::Eq | NodeOp::MaskedEq => half == self.datum,
            NodeOp::Gt => half > self.datum,
            NodeOp::Ge => half >= self.datum,
        }
    }
}

/// Two rules give one condition different actions: libseccomp refuses the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

const MATCH: u32 = 0x1;
const MATCH_ONCE: u32 = 0x2;
const X_FINISHED: u32 = 0x10;
const N_FINISHED: u32 = 0x20;
const X_PREFIX: u32 = 0x100;
const N_PREFIX: u32 = 0x200;
const M_MATCHSET: u32 = MATCH | MATCH_ONCE;
const M_REDUNDANT: u32 = MATCH | X_FINISHED | N_PREFIX;

#[derive(Clone, Copy)]
struct IterState {
    flags: u32,
    action: u32,
}

/// One syscall's merged rules.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// The first level (any node of it); `None` with `action` set: an unconditional rule.
    pub root: Option<usize>,
    /// The action when there is no tree.
    pub action: Option<u32>,
    exists: bool,
}

fn arg_priority(n: &Node) -> u32 {
    (u32::from(n.arg) << 1) + u32::from(n.hi)
}

fn op_priority(op: CmpOp) -> u32 {
    match op {
        CmpOp::MaskedEq | CmpOp::Eq | CmpOp::Ne => 3,
        CmpOp::Le | CmpOp::Lt => 2,
        CmpOp::Ge | CmpOp::Gt => 1,
    }
}

impl Tree {
    /// Merges `rules` in order as libseccomp's `seccomp_rule_add` would, for 64-bit or
    /// 32-bit (`bits32`) arguments.
    pub fn build(rules: &[CondRule], bits32: bool) -> Result<Tree, Conflict> {
        let mut t = Tree::default();
        for r in rules {
            t.rule_add(r, bits32)?;
        }
        Ok(t)
    }

    /// The verdict for `args`; `None`: no rule decides (the default action applies).
    pub fn decide(&self, args: &[u64; 6]) -> Option<u32> {
        match self.root {
            None => self.action,
            Some(r) => self.eval_level(r, args),
        }
    }

    fn eval_level(&self, any: usize, args: &[u64; 6]) -> Option<u32> {
        let mut c = Some(self.level_start(any));
        while let Some(i) = c {
            let n = &self.nodes[i];
            let (nxt, act) = if n.holds(args[n.arg as usize]) {
                (n.nxt_t, n.act_t())
            } else {
                (n.nxt_f, n.act_f())
            };
            match (nxt, act) {
                (Some(l), _) => {
                    if let Some(a) = self.eval_level(l, args) {
                        return Some(a);
                    }
                }
                (None, Some(a)) => return Some(a),
                (None, None) => {}
            }
            c = n.lvl_nxt;
        }
        None
    }

    /// The first node of the level `any` is on.
    pub fn level_start(&self, mut any: usize) -> usize {
        while let Some(p) = self.nodes[any].lvl_prv {
            any = p;
        }
        any
    }

    fn n(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
    fn m(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    fn chain_lt(&self, a: usize, b: usize) -> bool {
        let (a, b) = (self.n(a), self.n(b));
        let (aa, ba) = (arg_priority(a), arg_priority(b));
        if aa != ba {
            return aa < ba;
        }
        let (ao, bo) = (op_priority(a.op_orig), op_priority(b.op_orig));
        if ao != bo {
            return ao < bo;
        }
        match a.op_orig {
            CmpOp::Le | CmpOp::Lt => a.datum > b.datum,
            _ => a.datum < b.datum,
        }
    }

    fn chain_eq(&self, a: usize, b: usize) -> bool {
        let (a, b) = (self.n(a), self.n(b));
        arg_priority(a) == arg_priority(b) && a.op == b.op && a.datum == b.datum && a.mask == b.mask
    }

    fn leaf(&self, i: usize) -> bool {
        self.n(i).nxt_t.is_none() && self.n(i).nxt_f.is_none()
    }

    fn zombie(&self, i: usize) -> bool {
        self.leaf(i) && !self.n(i).act_t_flg && !self.n(i).act_f_flg
    }

    fn get(&mut self, i: Option<usize>) -> Option<usize> {
        if let Some(i) = i {
            self.m(i).refcnt += 1;
        }
        i
    }

    /// Frees the whole level of `node` unless something outside the level refers to it.
    fn level_clean(&mut self, node: usize) -> u32 {
        let start = self.level_start(node);
        let mut n = Some(start);
        while let Some(i) = n {
            let links =
                u32::from(self.n(i).lvl_prv.is_some()) + u32::from(self.n(i).lvl_nxt.is_some());
            if self.n(i).refcnt > links {
                return 0;
            }
            n = self.n(i).lvl_nxt;
        }
        let mut cnt = 0;
        let mut n = Some(start);
        while n.is_some() {
            cnt += self.put(&mut n);
        }
        cnt
    }

    fn tree_put(&mut self, tree: &mut Option<usize>) -> u32 {
        let mut cnt = self.put(tree);
        if let Some(t) = *tree {
            cnt += self.level_clean(t);
        }
        cnt
    }

    /// Drops one reference; a node losing its last one leaves its level and drops its
    /// subtrees. `node` moves to a neighbour (or `None`) when the node goes.
    fn put(&mut self, node: &mut Option<usize>) -> u32 {
        let Some(n) = *node else {
            return 0;
        };
        self.m(n).refcnt -= 1;
        if self.n(n).refcnt != 0 {
            return 0;
        }
        let mut cnt = 0;
        let Node {
            lvl_prv,
            lvl_nxt,
            nxt_t,
            nxt_f,
            ..
        } = *self.n(n);
        let (mut lp, mut ln) = (lvl_prv, lvl_nxt);
        if let Some(p) = lp {
            self.m(p).lvl_nxt = None;
        }
        if let Some(x) = ln {
            self.m(x).lvl_prv = None;
        }
        if lp.is_some() {
            cnt += self.put(&mut lp);
        }
        if ln.is_some() {
            cnt += self.put(&mut ln);
        }
        if let Some(p) = lp {
            let g = self.get(ln);
            self.m(p).lvl_nxt = g;
        }
        if let Some(x) = ln {
            let g = self.get(lp);
            self.m(x).lvl_prv = g;
        }
        *node = lp.or(ln);
        let (mut t, mut f) = (nxt_t, nxt_f);
        cnt += self.tree_put(&mut t);
        cnt += self.tree_put(&mut f);
        cnt + 1
    }

    /// Removes `node` (and any emptied node met on the way) from the tree at `tree`.
    fn tree_remove(&mut self, tree: &mut Option<usize>, node: usize) -> u32 {
        let Some(t) = *tree else {
            return 0;
        };
        let mut cnt = 0;
        let mut c = self.level_start(t);
        loop {
            if c == node {
                return cnt + self.remove_here(tree, c);
            }
            let mut sub = self.n(c).nxt_t;
            cnt += self.tree_remove(&mut sub, node);
            self.m(c).nxt_t = sub;
            let mut sub = self.n(c).nxt_f;
            cnt += self.tree_remove(&mut sub, node);
            self.m(c).nxt_f = sub;
            if self.zombie(c) {
                return cnt + self.remove_here(tree, c);
            }
            match self.n(c).lvl_nxt {
                Some(x) if cnt == 0 => c = x,
                _ => return cnt,
            }
        }
    }

    fn remove_here(&mut self, tree: &mut Option<usize>, c: usize) -> u32 {
        let (p, x) = (self.n(c).lvl_prv, self.n(c).lvl_nxt);
        if *tree == Some(c) {
            *tree = p.or(x);
        }
        if let Some(p) = p {
            self.m(p).lvl_nxt = x;
        }
        if let Some(x) = x {
            self.m(x).lvl_prv = p;
        }
        self.m(c).lvl_prv = None;
        self.m(c).lvl_nxt = None;
        let mut cc = Some(c);
        self.put(&mut cc)
    }

    /// Whether every action in the tree at `tree` is `action`.
    fn act_check(&self, tree: Option<usize>, action: u32) -> Result<(), Conflict> {
        let Some(t) = tree else {
            return Ok(());
        };
        let mut c = Some(self.level_start(t));
        while let Some(i) = c {
            let n = self.n(i);
            if (n.act_t_flg && n.act_t != action) || (n.act_f_flg && n.act_f != action) {
                return Err(Conflict);
            }
            self.act_check(n.nxt_t, action)?;
            self.act_check(n.nxt_f, action)?;
            c = n.lvl_nxt;
        }
        Ok(())
    }

    fn finish(state: &mut IterState, new: IterState, cnt: u32) -> u32 {
        if new.flags & MATCH != 0 {
            state.flags |= new.flags;
        } else {
            state.flags &= !MATCH;
        }
        cnt
    }

    fn nxt(&self, i: usize, side: bool) -> Option<usize> {
        self.n(i).next(side)
    }

    fn set_nxt(&mut self, i: usize, side: bool, v: Option<usize>) {
        if side {
            self.m(i).nxt_t = v;
        } else {
            self.m(i).nxt_f = v;
        }
    }

    fn set_act(&mut self, i: usize, side: bool, action: u32) {
        if side {
            self.set_t(i, action);
        } else {
            self.set_f(i, action);
        }
    }

    /// `prune` of `new` against `existing` while holding a reference on the level node `xi`
    /// (pruning may free it); returns where `xi` is afterwards (`None`: gone).
    fn prune_held(
        &mut self,
        xi: usize,
        existing: Option<usize>,
        new: Option<usize>,
        state: &mut IterState,
        cnt: &mut u32,
    ) -> Option<usize> {
        self.get(Some(xi));
        *cnt += self.prune(existing, new, state);
        let mut xo = Some(xi);
        *cnt += self.put(&mut xo);
        xo
    }

    /// Looks for the new chain `new` in the existing tree: removes existing chains it makes
    /// redundant (same action, new one shorter) and flags a new chain an existing shorter
    /// one covers. Returns the number of nodes freed.
    fn prune(&mut self, existing: Option<usize>, new: Option<usize>, state: &mut IterState) -> u32 {
        let mut cnt = 0;
        let mut st = *state;
        let (Some(x0), Some(n)) = (existing, new) else {
            return Self::finish(state, st, cnt);
        };
        if state.flags & M_MATCHSET == MATCH_ONCE {
            return Self::finish(state, st, cnt);
        }
        let mut x = Some(self.level_start(x0));
        while let Some(xi) = x {
            let x_next = self.n(xi).lvl_nxt;
            let mut xi = xi;
            'node: {
                if self.chain_eq(xi, n) {
                    st.flags |= M_MATCHSET;
                    if self.leaf(n) {
                        st.flags |= N_FINISHED;
                    }
                    if self.leaf(xi) {
                        st.flags |= X_FINISHED;
                    }
                    let (xn, nn) = (self.n(xi), self.n(n));
                    if (xn.act_t_flg || xn.nxt_t.is_some()) && !(nn.act_t_flg || nn.nxt_t.is_some())
                    {
                        return Self::finish(state, st, cnt);
                    }
                    if (xn.act_f_flg || xn.nxt_f.is_some()) && !(nn.act_f_flg || nn.nxt_f.is_some())
                    {
                        return Self::finish(state, st, cnt);
                    }
                    if st.flags & N_FINISHED != 0
                        && st.flags & X_FINISHED != 0
                        && (nn.act_t_flg != xn.act_t_flg
                            || nn.act_t != xn.act_t
                            || nn.act_f_flg != xn.act_f_flg
                            || nn.act_f != xn.act_f)
                    {
                        return Self::finish(state, st, cnt);
                    }
                    for side in [true, false] {
                        let nsub = self.nxt(n, side);
                        if nsub.is_none() {
                            continue;
                        }
                        let mut sn = *state;
                        sn.flags |= M_MATCHSET;
                        let xsub = self.nxt(xi, side);
                        let xo = self.prune_held(xi, xsub, nsub, &mut sn, &mut cnt);
                        if sn.flags & MATCH != 0 {
                            st.flags |= sn.flags;
                        }
                        match xo {
                            None => break 'node,
                            Some(v) => xi = v,
                        }
                    }
                    let covered =
                        self.act_check(Some(xi), st.action).is_ok() && st.flags & MATCH != 0;
                    if covered && st.flags & N_FINISHED != 0 && st.flags & X_PREFIX != 0 {
                        // The new chain is shorter: the existing one goes.
                        let mut root = self.root;
                        cnt += self.tree_remove(&mut root, xi);
                        self.root = root;
                        if self.root.is_none() {
                            return Self::finish(state, st, cnt);
                        }
                    } else if covered && st.flags & X_FINISHED != 0 && st.flags & N_PREFIX != 0 {
                        // The new chain is longer.
                        return Self::finish(state, st, cnt);
                    }
                } else {
                    // Different tests: the chain whose node sorts first descends (the existing
                    // one when it sorts before the new one), the other stays at this node.
                    let x_descends = self.chain_lt(xi, n);
                    let (stop, flag) = if x_descends {
                        (N_PREFIX, X_PREFIX)
                    } else {
                        (X_PREFIX, N_PREFIX)
                    };
                    if state.flags & stop != 0 {
                        return Self::finish(state, st, cnt);
                    }
                    for side in [true, false] {
                        let sub = self.nxt(if x_descends { xi } else { n }, side);
                        if sub.is_none() {
                            continue;
                        }
                        let (existing, new) = if x_descends {
                            (sub, Some(n))
                        } else {
                            (Some(xi), sub)
                        };
                        let mut sn = *state;
                        sn.flags &= !MATCH;
                        sn.flags |= flag;
                        let xo = self.prune_held(xi, existing, new, &mut sn, &mut cnt);
                        if sn.flags & MATCH != 0 {
                            st.flags |= sn.flags;
                            return Self::finish(state, st, cnt);
                        }
                        match xo {
                            None => break 'node,
                            Some(v) => xi = v,
                        }
                    }
                }
            }
            x = x_next;
        }
        st.flags &= !MATCH;
        Self::finish(state, st, cnt)
    }

    /// Merges the new chain `new` into the level at `existing`.
    fn add(&mut self, existing: &mut Option<usize>, new: usize) -> Result<(), Conflict> {
        let n = new;
        let mut x = existing.expect("add into an existing level");
        loop {
            if self.chain_eq(x, n) {
                let nn = self.n(n).clone();
                for side in [true, false] {
                    let Some(na) = nn.act(side) else {
                        continue;
                    };
                    match self.n(x).act(side) {
                        None => {
                            let mut sub = self.nxt(x, side);
                            self.act_check(sub, na)?;
                            self.put(&mut sub);
                            self.set_nxt(x, side, None);
                            self.set_act(x, side, na);
                        }
                        Some(xa) if xa != na => {
                            // A 64-bit `>`: the larger value's action wins the high word. On
                            // the false side libseccomp 2.5 updates the true action too.
                            let wins = if side {
                                nn.datum_full > self.n(x).datum_full
                            } else {
                                nn.datum_full < self.n(x).datum_full
                            };
                            if nn.hi && wins {
                                self.m(x).act_t = nn.act_t;
                            }
                            if self.leaf(x) || self.leaf(n) {
                                return Err(Conflict);
                            }
                        }
                        Some(_) => {}
                    }
                }
                for side in [true, false] {
                    let (nsub, xsub) = (nn.next(side), self.nxt(x, side));
                    let Some(nsub) = nsub else { continue };
                    if xsub.is_some() {
                        let mut s = xsub;
                        self.add(&mut s, nsub)?;
                        self.set_nxt(x, side, s);
                    } else if self.n(x).act(side).is_none() {
                        let g = self.get(Some(nsub));
                        self.set_nxt(x, side, g);
                    } else {
                        // The existing chain is shorter.
                        return Ok(());
                    }
                }
                return Ok(());
            } else if !self.chain_lt(x, n) {
                match self.n(x).lvl_nxt {
                    None => {
                        let g = self.get(Some(x));
                        self.m(n).lvl_prv = g;
                        let g = self.get(Some(n));
                        self.m(x).lvl_nxt = g;
                        return Ok(());
                    }
                    Some(next) => x = next,
                }
            } else {
                match self.n(x).lvl_prv {
                    Some(p) => {
                        let g = self.get(Some(n));
                        self.m(p).lvl_nxt = g;
                        self.m(n).lvl_prv = Some(p);
                        let g = self.get(Some(n));
                        self.m(x).lvl_prv = g;
                        self.m(n).lvl_nxt = Some(x);
                    }
                    None => {
                        let g = self.get(Some(n));
                        self.m(x).lvl_prv = g;
                        let g = self.get(Some(x));
                        self.m(n).lvl_nxt = g;
                    }
                }
                if *existing == Some(x) {
                    *existing = self.get(Some(n));
                    let mut xo = Some(x);
                    self.put(&mut xo);
                }
                return Ok(());
            }
        }
    }

    /// A fresh node comparing (`arg`, high word?) with `op` (from the rule's `op_orig`).
    fn new_node(
        &mut self,
        (arg, hi): (u8, bool),
        (op, op_orig): (NodeOp, CmpOp),
        (mask, datum, full): (u32, u32, u64),
    ) -> usize {
        self.nodes.push(Node {
            arg,
            hi,
            op,
            op_orig,
            mask,
            datum: datum & mask,
            datum_full: full,
            act_t_flg: false,
            act_t: 0,
            act_f_flg: false,
            act_f: 0,
            nxt_t: None,
            nxt_f: None,
            lvl_prv: None,
            lvl_nxt: None,
            refcnt: 0,
        });
        self.nodes.len() - 1
    }

    fn set_t(&mut self, i: usize, action: u32) {
        self.m(i).act_t_flg = true;
        self.m(i).act_t = action;
    }

    fn set_f(&mut self, i: usize, action: u32) {
        self.m(i).act_f_flg = true;
        self.m(i).act_f = action;
    }

    /// The chain of one rule with 64-bit arguments; `None`: every condition is a no-op.
    fn chain_64(&mut self, rule: &CondRule) -> Option<usize> {
        let mut conds = rule.conds.clone();
        conds.sort_by_key(|c| c.index);
        let mut head = None;
        let mut prev: Option<([usize; 3], CmpOp)> = None;
        for c in &conds {
            let (mask, datum) = match c.op {
                CmpOp::MaskedEq => (c.value, c.value_two),
                _ => (u64::MAX, c.value),
            };
            if c.op == CmpOp::MaskedEq && mask == 0 {
                continue;
            }
            let (mh, ml) = (hi32(mask), lo32(mask));
            let (dh, dl) = (hi32(datum), lo32(datum));
            let cur: [usize; 3] = match c.op {
                CmpOp::Gt | CmpOp::Ge | CmpOp::Le | CmpOp::Lt => {
                    let lo_op = match c.op {
                        CmpOp::Gt | CmpOp::Le => NodeOp::Gt,
                        _ => NodeOp::Ge,
                    };
                    let a = self.new_node((c.index, true), (NodeOp::Gt, c.op), (mh, dh, datum));
                    let b = self.new_node((c.index, true), (NodeOp::Eq, c.op), (mh, dh, datum));
                    let l = self.new_node((c.index, false), (lo_op, c.op), (ml, dl, datum));
                    let g = self.get(Some(b));
                    self.m(a).nxt_f = g;
                    let g = self.get(Some(l));
                    self.m(b).nxt_t = g;
                    [a, b, l]
                }
                _ => {
                    let op = if c.op == CmpOp::MaskedEq {
                        NodeOp::MaskedEq
                    } else {
                        NodeOp::Eq
                    };
                    let a = self.new_node((c.index, true), (op, c.op), (mh, dh, datum));
                    let b = self.new_node((c.index, false), (op, c.op), (ml, dl, datum));
                    let g = self.get(Some(b));
                    self.m(a).nxt_t = g;
                    [a, b, usize::MAX]
                }
            };
            match prev {
                Some((p, op_prev)) => {
                    let g = |t: &mut Self| t.get(Some(cur[0]));
                    match op_prev {
                        CmpOp::Gt | CmpOp::Ge => {
                            let v = g(self);
                            self.m(p[0]).nxt_t = v;
                            let v = g(self);
                            self.m(p[2]).nxt_t = v;
                        }
                        CmpOp::Eq | CmpOp::MaskedEq => {
                            let v = g(self);
                            self.m(p[1]).nxt_t = v;
                        }
                        CmpOp::Le | CmpOp::Lt => {
                            let v = g(self);
                            self.m(p[1]).nxt_f = v;
                            let v = g(self);
                            self.m(p[2]).nxt_f = v;
                        }
                        CmpOp::Ne => {
                            let v = g(self);
                            self.m(p[0]).nxt_f = v;
                            let v = g(self);
                            self.m(p[1]).nxt_f = v;
                        }
                    }
                }
                None => head = self.get(Some(cur[0])),
            }
            prev = Some((cur, c.op));
        }
        let (last, op) = prev?;
        let a = rule.action;
        match op {
            CmpOp::Gt | CmpOp::Ge => {
                self.set_t(last[0], a);
                self.set_t(last[2], a);
            }
            CmpOp::Le | CmpOp::Lt => {
                self.set_f(last[1], a);
                self.set_f(last[2], a);
            }
            CmpOp::Eq | CmpOp::MaskedEq => self.set_t(last[1], a),
            CmpOp::Ne => {
                self.set_f(last[0], a);
                self.set_f(last[1], a);
            }
        }
        head
    }

    /// The chain of one rule with 32-bit arguments (only the low words are compared).
    fn chain_32(&mut self, rule: &CondRule) -> Option<usize> {
        let mut conds = rule.conds.clone();
        conds.sort_by_key(|c| c.index);
        let mut head = None;
        let mut prev: Option<(usize, bool)> = None;
        for c in &conds {
            let (mask, datum) = match c.op {
                CmpOp::MaskedEq => (lo32(c.value), c.value_two),
                _ => (u32::MAX, c.value),
            };
            if c.op == CmpOp::MaskedEq && mask == 0 {
                continue;
            }
            let (op, tf) = match c.op {
                CmpOp::Ne => (NodeOp::Eq, false),
                CmpOp::Lt => (NodeOp::Ge, false),
                CmpOp::Le => (NodeOp::Gt, false),
                CmpOp::Eq => (NodeOp::Eq, true),
                CmpOp::Ge => (NodeOp::Ge, true),
                CmpOp::Gt => (NodeOp::Gt, true),
                CmpOp::MaskedEq => (NodeOp::MaskedEq, true),
            };
            let i = self.new_node((c.index, false), (op, c.op), (mask, lo32(datum), datum));
            match prev {
                Some((p, true)) => {
                    let g = self.get(Some(i));
                    self.m(p).nxt_t = g;
                }
                Some((p, false)) => {
                    let g = self.get(Some(i));
                    self.m(p).nxt_f = g;
                }
                None => head = self.get(Some(i)),
            }
            prev = Some((i, tf));
        }
        let (last, tf) = prev?;
        if tf {
            self.set_t(last, rule.action);
        } else {
            self.set_f(last, rule.action);
        }
        head
    }

    /// libseccomp's `db_rule_add` for one syscall.
    fn rule_add(&mut self, rule: &CondRule, bits32: bool) -> Result<(), Conflict> {
        let mut new = if bits32 {
            self.chain_32(rule)
        } else {
            self.chain_64(rule)
        };
        if !self.exists {
            self.exists = true;
            self.root = new;
            self.action = new.is_none().then_some(rule.action);
            return Ok(());
        }
        let mut removed_some = false;
        loop {
            if self.root.is_none() {
                if removed_some {
                    // Pruning emptied the tree: the new chain replaces it.
                    self.root = new;
                    self.action = new.is_none().then_some(rule.action);
                } else {
                    // An unconditional rule covers everything after it.
                    self.tree_put(&mut new);
                }
                return Ok(());
            }
            if new.is_none() {
                // An unconditional rule replaces all conditional ones.
                let mut r = self.root;
                self.tree_put(&mut r);
                self.root = None;
                self.action = Some(rule.action);
                return Ok(());
            }
            let mut state = IterState {
                flags: 0,
                action: rule.action,
            };
            let removed = self.prune(self.root, new, &mut state);
            if removed > 0 {
                removed_some = true;
                if self.root.is_none() {
                    continue;
                }
            } else if state.flags & M_REDUNDANT == M_REDUNDANT {
                self.tree_put(&mut new);
                return Ok(());
            }
            let mut r = self.root;
            let res = self.add(&mut r, new.expect("checked above"));
            self.root = r;
            res?;
            self.tree_put(&mut new);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::policy::ArgCond;

    const E13: u32 = libc::SECCOMP_RET_ERRNO | 13;
    const E22: u32 = libc::SECCOMP_RET_ERRNO | 22;

    fn rule(conds: &[(u8, CmpOp, u64, u64)], action: u32) -> CondRule {
        CondRule {
            conds: conds
                .iter()
                .map(|&(i, op, v, v2)| ArgCond::new(i, op, v, v2))
                .collect(),
            action,
        }
    }

    #[test]
    fn higher_argument_first() {
        // The example: socket(2, 1) with "arg0 == 2" listed before "arg1 == 1".
        let rules = [
            rule(&[(0, CmpOp::Eq, 2, 0)], E13),
            rule(&[(1, CmpOp::Eq, 1, 0)], E22),
        ];
        for bits32 in [false, true] {
            let t = Tree::build(&rules, bits32).unwrap();
            assert_eq!(t.decide(&[2, 1, 0, 0, 0, 0]), Some(E22));
            assert_eq!(t.decide(&[2, 3, 0, 0, 0, 0]), Some(E13));
            assert_eq!(t.decide(&[3, 3, 0, 0, 0, 0]), None);
        }
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        let rules = [
            rule(&[(0, CmpOp::Lt, 5, 0)], E22),
            rule(&[(1, CmpOp::Gt, 5, 0)], kill),
        ];
        let t = Tree::build(&rules, false).unwrap();
        assert_eq!(t.decide(&[0, 6, 0, 0, 0, 0]), Some(kill));
        assert_eq!(t.decide(&[0, 5, 0, 0, 0, 0]), Some(E22));
    }

    #[test]
    fn same_condition_two_actions_conflict() {
        let rules = [
            rule(&[(0, CmpOp::Eq, 2, 0)], E13),
            rule(&[(0, CmpOp::Eq, 2, 0)], E22),
        ];
        assert_eq!(Tree::build(&rules, false).unwrap_err(), Conflict);
        assert_eq!(Tree::build(&rules, true).unwrap_err(), Conflict);
    }

    #[test]
    fn unconditional_wins_and_noop_masks_are_unconditional() {
        let rules = [
            rule(&[(0, CmpOp::Eq, 2, 0)], E13),
            rule(&[(1, CmpOp::MaskedEq, 0, 7)], E22),
        ];
        let t = Tree::build(&rules, false).unwrap();
        assert_eq!((t.root, t.decide(&[2; 6])), (None, Some(E22)));
        let rules = [
            rule(&[(1, CmpOp::MaskedEq, 1 << 40, 0)], E22),
            rule(&[(0, CmpOp::Eq, 2, 0)], E13),
        ];
        // On 32-bit arguments the mask's low word is 0: unconditional, later rules ignored.
        let t = Tree::build(&rules, true).unwrap();
        assert_eq!(t.decide(&[2; 6]), Some(E22));
        let t = Tree::build(&rules, false).unwrap();
        assert_eq!(t.decide(&[2, 1 << 40, 0, 0, 0, 0]), Some(E13));
        assert_eq!(t.decide(&[3, 0, 0, 0, 0, 0]), Some(E22));
    }
}
