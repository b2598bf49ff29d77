//! Workload compatibility: real programs from Debian's packages (hack/deps installs them), each
//! doing real work in a container with Podman's default seccomp profile and nucleus's default
//! built-in filters — and the same bundle under runc, the reference: a workload that fails
//! there is a broken test, not a nucleus bug.
//!
//! The rootfs is the suite's busybox one with the host's /usr (and /lib, /lib64, the
//! alternatives and Java's configuration) bound read-only and a tmpfs on /tmp: the programs
//! run exactly as the packages installed them.

use std::path::Path;
use std::time::{Duration, Instant};

use nucleus_integration::*;
use serde_json::{json, Value};

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
/// A JVM under -Xcomp on a loaded 2-core machine takes tens of seconds; a hang still fails.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(300);

fn podman_profile() -> Value {
    let text = std::fs::read_to_string(PODMAN_PROFILE).unwrap_or_else(|e| {
        panic!("{PODMAN_PROFILE}: {e} (install golang-github-containers-common: hack/deps)")
    });
    serde_json::from_str(&text).expect("Podman's seccomp profile is JSON")
}

/// A container on `runtime` running `script` with busybox's sh, the host's programs bound
/// read-only, Podman's profile, and `annotations`.
fn workload(runtime: &Path, name: &str, script: &str, annotations: Value) -> Container {
    let mut c = Container::with_runtime(runtime, &format!("wl10-{name}"));
    let mut binds = vec![
        "/usr".to_string(),
        "/lib".into(),
        "/lib64".into(),
        "/etc/alternatives".into(),
        "/etc/ld.so.cache".into(),
    ];
    // OpenJDK's configuration: /usr/lib/jvm/*/conf links to /etc/java-N-openjdk.
    for e in std::fs::read_dir("/etc").expect("read /etc").flatten() {
        if e.file_name().to_string_lossy().starts_with("java-") {
            binds.push(e.path().to_string_lossy().into_owned());
        }
    }
    for b in binds {
        if Path::new(&b).exists() {
            c.add_mount(
                json!({"destination": b, "type": "bind", "source": b, "options": ["rbind", "ro"]}),
            );
        }
    }
    c.add_mount(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777", "size=262144k"]}),
    );
    c.config()["linux"]["seccomp"] = podman_profile();
    c.config()["annotations"] = annotations;
    // HOME and a UTF-8 locale, as images set them.
    c.config()["process"]["env"] = json!([DEFAULT_PATH, "HOME=/tmp", "LANG=C.UTF-8"]);
    c.args(&["/bin/sh", "-c", script]);
    c
}

/// `run` in the foreground with the workload time-out.
fn run(c: &mut Container) -> (Output, Duration) {
    c.bundle.write_config();
    let b = c.bundle.path().to_string_lossy().into_owned();
    let id = c.id.clone();
    let start = Instant::now();
    let out = exec(
        c.command().args(["run", "--bundle", &b, &id]),
        WORKLOAD_TIMEOUT,
    );
    (out, start.elapsed())
}

/// The lines of `expected` missing from the output's stdout (each must be a whole line).
fn missing<'a>(out: &Output, expected: &[&'a str]) -> Vec<&'a str> {
    expected
        .iter()
        .filter(|e| !out.stdout.lines().any(|l| l.trim_end() == **e))
        .copied()
        .collect()
}

/// Runs `script` under runc (the reference) and then under the runtime under test, both with
/// Podman's profile and the default built-ins; each must exit 0 and print every `expected`
/// line.
#[track_caller]
fn passes_on_both(name: &str, script: &str, expected: &[&str]) {
    passes_on_both_with(name, script, &|_| {}, expected);
}

/// `passes_on_both` with `edit` applied to both configs.
#[track_caller]
fn passes_on_both_with(name: &str, script: &str, edit: &dyn Fn(&mut Container), expected: &[&str]) {
    // The filter is in force (mode 2), or passing would prove nothing.
    let script =
        format!("sed -n 's/^Seccomp:[[:space:]]*/seccomp mode /p' /proc/self/status\n{script}");
    for (who, runtime) in [("reference", reference()), ("runtime", runtime_path())] {
        let mut c = workload(&runtime, name, &script, json!({}));
        edit(&mut c);
        let (out, took) = run(&mut c);
        let mut lost = missing(&out, expected);
        lost.extend(missing(&out, &["seccomp mode 2"]));
        let broken = if who == "reference" {
            " (the reference fails it: the test is broken, not the runtime)"
        } else {
            ""
        };
        assert!(
            out.success() && lost.is_empty(),
            "{name} under the {who} {}{broken}: missing lines {lost:?}\n{out}",
            runtime.display()
        );
        eprintln!("{name}: {who} passed in {:.1} s", took.as_secs_f64());
    }
}

/// V8 tiers a hot function up to optimized code (asked of V8 itself), then a loopback HTTP
/// server answers the process's own request.
const NODE: &str = r#"
cat > /tmp/w.js <<'EOF'
const http = require('http');
function hot(n) {
  let acc = 0;
  for (let i = 0; i < n; i++) acc = (acc + i * i) % 1000003;
  return acc;
}
let sum = 0;
for (let r = 0; r < 300; r++) sum = (sum + hot(100000)) % 1000003;
// TurboFan compiles on a background thread: keep the function hot until it is done (a loaded
// machine may take seconds), but not forever.
let optimized = false;
for (const until = Date.now() + 60000; !optimized && Date.now() < until; ) {
  hot(1000);
  // V8's OptimizationStatus: bit 4 is "optimized" (TurboFan code).
  optimized = (%GetOptimizationStatus(hot) & 16) !== 0;
}
console.log('jit sum ' + sum + ' optimized ' + optimized);
const server = http.createServer((req, res) => res.end('hello from ' + req.url));
server.listen(0, '127.0.0.1', () => {
  http.get({host: '127.0.0.1', port: server.address().port, path: '/node'}, (res) => {
    let body = '';
    res.on('data', (d) => body += d);
    res.on('end', () => { console.log('http ' + res.statusCode + ' ' + body); server.close(); });
  });
});
EOF
/usr/bin/node --allow-natives-syntax /tmp/w.js
"#;

#[test]
fn node_jit_and_http_server() {
    let sum = {
        let mut sum = 0u64;
        for _ in 0..300 {
            let mut acc = 0u64;
            for i in 0..100_000u64 {
                acc = (acc + i * i) % 1_000_003;
            }
            sum = (sum + acc) % 1_000_003;
        }
        sum
    };
    let jit = format!("jit sum {sum} optimized true");
    passes_on_both("node", NODE, &[jit.as_str(), "http 200 hello from /node"]);
}

/// javac (itself a JIT-heavy Java program) compiles a small program using a thread pool; it
/// runs with the default tiers and with -Xcomp (everything compiled before it runs).
const JAVA: &str = r#"
set -e
/usr/bin/java -version 2>&1 | head -n 1 | cut -d' ' -f1-2
/usr/bin/java -Xcomp -version 2>&1 | grep -o 'compiled mode'
mkdir /tmp/j && cd /tmp/j
cat > W.java <<'EOF'
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class W {
    static long steps(long n) {
        long s = 0;
        while (n != 1) {
            n = (n & 1) == 0 ? n / 2 : 3 * n + 1;
            s++;
        }
        return s;
    }

    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<long[]>> parts = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            final long first = 1 + t;
            parts.add(pool.submit(new Callable<long[]>() {
                public long[] call() {
                    long best = 0, arg = 0;
                    for (long i = first; i < 1000000; i += 4) {
                        long s = steps(i);
                        if (s > best) { best = s; arg = i; }
                    }
                    return new long[] {best, arg};
                }
            }));
        }
        long best = 0, arg = 0;
        for (Future<long[]> f : parts) {
            long[] r = f.get();
            if (r[0] > best) { best = r[0]; arg = r[1]; }
        }
        pool.shutdown();
        Map<String, Integer> words = new TreeMap<>();
        for (String w : "to be or not to be".split(" ")) {
            Integer n = words.get(w);
            words.put(w, n == null ? 1 : n + 1);
        }
        System.out.println(args[0] + " collatz " + arg + " " + best);
        System.out.println(args[0] + " words " + words);
    }
}
EOF
/usr/bin/javac -XDstringConcat=inline -d . W.java
/usr/bin/java -cp . W tiered
/usr/bin/java -Xcomp -cp . W xcomp
"#;

#[test]
fn java_javac_threads_and_xcomp() {
    passes_on_both(
        "java",
        JAVA,
        &[
            "openjdk version",
            "compiled mode",
            "tiered collatz 837799 524",
            "tiered words {be=2, not=1, or=1, to=2}",
            "xcomp collatz 837799 524",
            "xcomp words {be=2, not=1, or=1, to=2}",
        ],
    );
}

const PYTHON: &str = r#"
cat > /tmp/w.py <<'EOF'
import json, resource, socket, subprocess, threading
from concurrent.futures import ThreadPoolExecutor

doc = json.loads(json.dumps({"n": [1, 2, 3], "s": "caf\u00e9", "d": {"x": None}}))
print("json", doc["n"], doc["s"].encode().hex(), doc["d"])

with ThreadPoolExecutor(max_workers=4) as pool:
    print("threads", sum(pool.map(lambda k: sum(i * i for i in range(k)), range(2000))))

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def echo():
    conn, _ = srv.accept()
    with conn:
        conn.sendall(conn.recv(64).upper())
t = threading.Thread(target=echo)
t.start()
with socket.create_connection(srv.getsockname()) as cli:
    cli.sendall(b"ping")
    print("socket", cli.recv(64).decode())
t.join()
srv6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
srv6.bind(("::1", 0))
cli6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
cli6.sendto(b"datagram", srv6.getsockname())
print("udp6", srv6.recv(64).decode())

r = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.argv[1] * 3)", "ab"],
                   capture_output=True, text=True, check=True)
print("subprocess", r.stdout.strip())

resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))
print("nofile", resource.getrlimit(resource.RLIMIT_NOFILE))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
print("core", resource.getrlimit(resource.RLIMIT_CORE))
EOF
/usr/bin/python3 /tmp/w.py
"#;

#[test]
fn python_json_threads_sockets_subprocess_setrlimit() {
    // sum over k < 2000 of sum_{i<k} i^2 = sum_k (k-1)k(2k-1)/6
    let threads: u64 = (0..2000u64)
        .map(|k| (0..k).map(|i| i * i).sum::<u64>())
        .sum();
    let threads = format!("threads {threads}");
    passes_on_both(
        "python",
        PYTHON,
        &[
            "json [1, 2, 3] 636166c3a9 {'x': None}",
            threads.as_str(),
            "socket PING",
            "udp6 datagram",
            "subprocess ababab",
            "nofile (256, 512)",
            "core (0, 0)",
        ],
    );
}

const PERL: &str = r#"
/usr/bin/perl -e '
use strict; use warnings; use POSIX qw(floor); use Socket;
my %count;
$count{lc $_}++ for "The quick brown fox jumps over the lazy dog the end" =~ /(\w+)/g;
print "words ", join(",", map { "$_=$count{$_}" } sort keys %count), "\n";
pipe(my $r, my $w) or die "pipe: $!";
my $pid = fork() // die "fork: $!";
if ($pid == 0) { close $r; print $w join("+", map { $_ * $_ } 1..5); exit 0 }
close $w; my $got = <$r>; waitpid($pid, 0);
print "fork $got = ", eval($got), " status $?\n";
socketpair(my $s1, my $s2, AF_UNIX, SOCK_STREAM, 0) or die "socketpair: $!";
syswrite $s1, "over a socketpair"; sysread $s2, my $buf, 64;
print "unix $buf\n";
printf "floor %d sprintf %.3f\n", floor(7.9), 22 / 7;
'
"#;

#[test]
fn perl_regex_fork_sockets() {
    passes_on_both(
        "perl",
        PERL,
        &[
            "words brown=1,dog=1,end=1,fox=1,jumps=1,lazy=1,over=1,quick=1,the=3",
            "fork 1+4+9+16+25 = 55 status 0",
            "unix over a socketpair",
            "floor 7 sprintf 3.143",
        ],
    );
}

const BASH: &str = r#"
/usr/bin/bash -c '
ulimit -n 512 && echo "nofile $(ulimit -n) hard $(ulimit -Hn)"
ulimit -S -c 0 && echo "core $(ulimit -c)"
declare -A seen; for w in a b a c b a; do seen[$w]=$(( ${seen[$w]:-0} + 1 )); done
echo "assoc a=${seen[a]} b=${seen[b]} c=${seen[c]}"
while read -r n; do total=$(( ${total:-0} + n )); done < <(seq 1 100)
echo "procsubst $total"
coproc UPPER { tr a-z A-Z; }; echo hello >&"${UPPER[1]}"; eval "exec ${UPPER[1]}>&-"; read -r line <&"${UPPER[0]}"
echo "coproc $line"
'
"#;

#[test]
fn bash_ulimit_and_builtins() {
    passes_on_both(
        "bash",
        BASH,
        &[
            "nofile 512 hard 512",
            "core 0",
            "assoc a=3 b=2 c=1",
            "procsubst 5050",
            "coproc HELLO",
        ],
    );
}

/// age (Go): key generation, then 8 MiB encrypted and decrypted through the Go runtime's
/// goroutines and crypto.
const GO: &str = r#"
set -e
cd /tmp
/usr/bin/age --version | sed 's/^/age version /'
/usr/bin/age-keygen -o key 2>/dev/null
pub=$(/usr/bin/age-keygen -y key)
head -c 8388608 /dev/urandom > plain
/usr/bin/age -r "$pub" -o enc plain
/usr/bin/age -d -i key -o back enc
[ "$(sha256sum < plain)" = "$(sha256sum < back)" ] && echo "roundtrip identical"
[ "$(sha256sum < plain)" != "$(sha256sum < enc)" ] && echo "ciphertext differs"
"#;

#[test]
fn go_binary_encrypts_and_decrypts() {
    passes_on_both("go", GO, &["roundtrip identical", "ciphertext differs"]);
}

/// busybox applets: interface data with txqueuelen (SIOCGIF* ioctls), `ulimit -n` in its sh,
/// httpd and wget on loopback, tar|gzip round trip, awk.
const BUSYBOX_APPLETS: &str = r#"
set -e
export PATH=/bin
ifconfig lo | grep -o 'txqueuelen:[0-9]*' | sed 's/^/ifconfig /'
ulimit -n 512 && echo "nofile $(ulimit -n)"
mkdir -p /tmp/www /tmp/t/d
echo "served by busybox" > /tmp/www/index.html
httpd -p 127.0.0.1:8080 -h /tmp/www
echo "wget $(wget -q -O - http://127.0.0.1:8080/index.html)"
seq 1 1000 > /tmp/t/d/nums
tar -C /tmp/t -czf /tmp/a.tgz d && mkdir /tmp/u && tar -C /tmp/u -xzf /tmp/a.tgz
cmp /tmp/t/d/nums /tmp/u/d/nums && echo "tar roundtrip"
awk '{ s += $1 } END { print "awk", s }' /tmp/u/d/nums
"#;

#[test]
fn busybox_applets() {
    passes_on_both(
        "busybox",
        BUSYBOX_APPLETS,
        &[
            "ifconfig txqueuelen:1000",
            "nofile 512",
            "wget served by busybox",
            "tar roundtrip",
            "awk 500500",
        ],
    );
}

/// iproute2 over netlink in the container's private network namespace: link settings, an
/// address, a route lookup, statistics, JSON output.
const IPROUTE2: &str = r#"
set -e
ip=/usr/bin/ip
$ip link set lo mtu 1400
$ip link show lo | grep -o 'mtu [0-9]*' | sed 's/^/link /'
$ip addr add 10.11.12.13/24 dev lo
$ip -4 addr show dev lo | grep -o 'inet 10.11.12.13/24 scope global lo' | sed 's/^/addr /'
$ip route get 10.11.12.13 | grep -o '^local 10.11.12.13 dev lo' | sed 's/^/route /'
$ip -s link show lo | grep -c 'RX:' | sed 's/^/stats /'
$ip -j link show lo | grep -o '"ifname":"lo"' | sed 's/^/json /'
"#;

#[test]
fn iproute2_in_a_private_network_namespace() {
    let net_admin = |c: &mut Container| {
        for set in ["bounding", "effective", "permitted"] {
            c.config()["process"]["capabilities"][set]
                .as_array_mut()
                .expect("capability list")
                .push(json!("CAP_NET_ADMIN"));
        }
    };
    passes_on_both_with(
        "iproute2",
        IPROUTE2,
        &net_admin,
        &[
            "link mtu 1400",
            "addr inet 10.11.12.13/24 scope global lo",
            "route local 10.11.12.13 dev lo",
            "stats 1",
            "json \"ifname\":\"lo\"",
        ],
    );
    // The namespace was the container's own: the host's loopback is untouched.
    let host = exec(
        std::process::Command::new("/usr/bin/ip").args(["-4", "addr", "show", "dev", "lo"]),
        CMD_TIMEOUT,
    )
    .ok();
    assert!(!host.stdout.contains("10.11.12.13"), "{host}");
}

/// The opt-in strict rules (no PROT_WRITE|PROT_EXEC mprotect) break every JIT, as README says:
/// proof that this suite fails when the filter is wrong. The same commands pass with the
/// defaults and with `hardened`.
#[test]
fn strict_builtins_break_node_and_java() {
    let node = "/usr/bin/node -e 'console.log(6 * 7)'";
    let java = "/usr/bin/java -version 2>&1; echo exit $?";
    for builtins in ["default", "hardened", "strict"] {
        let ann = json!({"run.nucleus.seccomp.builtin-filters": builtins});
        let mut c = workload(&runtime_path(), "node-builtins", node, ann.clone());
        let (node_out, _) = run(&mut c);
        let mut c = workload(&runtime_path(), "java-builtins", java, ann);
        let (java_out, _) = run(&mut c);
        let java_out = java_out.ok();
        if builtins != "strict" {
            assert_eq!(
                node_out.clone().ok().stdout,
                "42\n",
                "{builtins}: {node_out}"
            );
            assert!(
                java_out.stdout.contains("openjdk version")
                    && java_out.stdout.ends_with("exit 0\n"),
                "{builtins}: {java_out}"
            );
        } else {
            // V8 aborts (SIGTRAP: 128 + 5) when it cannot make a code page executable.
            assert!(
                node_out.code == Some(133) && node_out.stderr.contains("Fatal error"),
                "node started under builtin-filters=strict\n{node_out}"
            );
            assert!(
                java_out
                    .stdout
                    .contains("Failed to mark memory page as executable")
                    && java_out.stdout.ends_with("exit 1\n"),
                "java started under builtin-filters=strict\n{java_out}"
            );
        }
    }
}
