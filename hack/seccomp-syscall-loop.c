/* Per-syscall cost probe for hack/bench-seccomp: times N raw calls of an allowed syscall
 * (getppid), calls of the syscalls that filters test arguments of (personality query, ioctl
 * FIONREAD, mprotect PROT_READ, prctl PR_GET_DUMPABLE, socket and clone with arguments every
 * filter allows but the kernel refuses at once, so the figure is the filter's and not the
 * work's) and a denied one (acct), printing "name ns_per_call" lines. Built static so it runs
 * as the only file of a container rootfs. */
#include <linux/sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Chunks this short mostly run without being preempted on a busy machine: the fastest chunk
 * is the call's cost, the rest is other load. */
#define CHUNK 1000

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    int fds[2];
    if (pipe(fds) != 0) return 1;
    void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const char *names[] = {"getppid", "personality", "ioctl", "mprotect",
                           "prctl",   "socket",      "clone", "acct"};
    enum { NCALLS = sizeof(names) / sizeof(names[0]) };
    double best[NCALLS];
    for (int c = 0; c < NCALLS; c++) best[c] = 1e18;
    /* The calls take turns, so a slow spell of the machine hits them all alike. */
    for (long done = 0; done < iters; done += CHUNK) {
        for (int c = 0; c < NCALLS; c++) {
            int n;
            double t = now_ns();
            for (long i = 0; i < CHUNK; i++) {
                switch (c) {
                case 0: syscall(SYS_getppid); break;
                case 1: syscall(SYS_personality, 0xffffffffUL); break;
                case 2: syscall(SYS_ioctl, fds[0], FIONREAD, &n); break;
                case 3: syscall(SYS_mprotect, page, 4096, PROT_READ); break;
                case 4: syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0); break;
                /* An unknown socket type: EINVAL before any allocation. */
                case 5: syscall(SYS_socket, AF_UNIX, 0x7f, 0); break;
                /* CLONE_SIGHAND without CLONE_VM: EINVAL before any copying. */
                case 6: syscall(SYS_clone, CLONE_SIGHAND, 0, 0, 0, 0); break;
                case 7: syscall(SYS_acct, NULL); break;
                }
            }
            double per = (now_ns() - t) / CHUNK;
            if (per < best[c]) best[c] = per;
        }
    }
    for (int c = 0; c < NCALLS; c++) printf("%s %.1f\n", names[c], best[c]);
    return 0;
}
