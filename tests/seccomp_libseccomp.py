#!/usr/bin/python3
"""Test helper: builds an OCI linux.seccomp profile with libseccomp the way runc does and
exports its BPF, so the Rust tests can compare decisions with nucleus's compiler.

  seccomp_libseccomp.py bpf PROFILE.json OUT.bpf   -> prints {"skipped": [names]} (names
                                                     libseccomp cannot resolve on any arch)
  seccomp_libseccomp.py convert CONTAINERS.json OUT.json
                                                  -> a containers/common (Podman) profile
                                                     resolved to OCI for amd64 and Podman's
                                                     default capabilities
"""
import json
import sys

import seccomp

ARCHES = {
    "SCMP_ARCH_X86_64": seccomp.Arch.X86_64,
    "SCMP_ARCH_X86": seccomp.Arch.X86,
    "SCMP_ARCH_X32": seccomp.Arch.X32,
    "SCMP_ARCH_NATIVE": seccomp.Arch.NATIVE,
}
OPS = {
    "SCMP_CMP_NE": seccomp.NE,
    "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ,
    "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}


def action(name, errno_ret):
    errno = 1 if errno_ret is None else errno_ret
    return {
        "SCMP_ACT_KILL": lambda: seccomp.KILL,
        "SCMP_ACT_KILL_THREAD": lambda: seccomp.KILL,
        "SCMP_ACT_KILL_PROCESS": lambda: seccomp.KILL_PROCESS,
        "SCMP_ACT_TRAP": lambda: seccomp.TRAP,
        "SCMP_ACT_ERRNO": lambda: seccomp.ERRNO(errno),
        "SCMP_ACT_TRACE": lambda: seccomp.TRACE(errno),
        "SCMP_ACT_LOG": lambda: seccomp.LOG,
        "SCMP_ACT_ALLOW": lambda: seccomp.ALLOW,
        "SCMP_ACT_NOTIFY": lambda: seccomp.NOTIFY,
    }[name]()


def known(name):
    for arch in (seccomp.Arch.X86_64, seccomp.Arch.X86, seccomp.Arch.X32):
        try:
            if seccomp.resolve_syscall(arch, name) >= 0:
                return True
        except (ValueError, RuntimeError):
            pass
    return False


def build(profile_path, out_path):
    p = json.load(open(profile_path))
    default = action(p["defaultAction"], p.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(default)
    for a in p.get("architectures") or []:
        arch = ARCHES.get(a)
        if arch is not None and arch != seccomp.Arch.NATIVE:
            try:
                f.add_arch(arch)
            except Exception:
                pass  # already present
    skipped = set()
    for sc in p.get("syscalls") or []:
        act = action(sc["action"], sc.get("errnoRet"))
        if act == default:
            continue  # runc skips these; libseccomp refuses them
        args = sc.get("args") or []
        conds = [seccomp.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0))
                 for a in args]
        idx = [a["index"] for a in args]
        alternatives = [[c] for c in conds] if len(set(idx)) != len(idx) else [conds]
        for name in sc["names"]:
            if not known(name):
                skipped.add(name)
                continue
            for alt in alternatives:
                try:
                    f.add_rule(act, name, *alt)
                except Exception as e:  # libseccomp refuses the profile (runc fails too)
                    print(json.dumps({"skipped": sorted(skipped), "error": f"{name}: {e}",
                                      "rule": sc}))
                    return
    with open(out_path, "wb") as o:
        f.export_bpf(o)
    with open(out_path + ".pfc", "w") as o:
        f.export_pfc(o)
    print(json.dumps({"skipped": sorted(skipped)}))


PODMAN_DEFAULT_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT",
}


def convert(in_path, out_path):
    p = json.load(open(in_path))
    arches = []
    for m in p.get("archMap") or []:
        if m["architecture"] == "SCMP_ARCH_X86_64":
            arches = [m["architecture"]] + m["subArchitectures"]
    out = {"defaultAction": p["defaultAction"], "architectures": arches, "syscalls": []}
    if p.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = p["defaultErrnoRet"]
    for sc in p["syscalls"]:
        inc, exc = sc.get("includes") or {}, sc.get("excludes") or {}
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if exc.get("arches") and "amd64" in exc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= PODMAN_DEFAULT_CAPS:
            continue
        if exc.get("caps") and set(exc["caps"]) & PODMAN_DEFAULT_CAPS:
            continue
        if inc.get("minKernel"):
            continue
        entry = {"names": sc["names"], "action": sc["action"]}
        if sc.get("errnoRet") is not None:
            entry["errnoRet"] = sc["errnoRet"]
        if sc.get("args"):
            entry["args"] = sc["args"]
        out["syscalls"].append(entry)
    json.dump(out, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    {"bpf": build, "convert": convert}[sys.argv[1]](*sys.argv[2:])
