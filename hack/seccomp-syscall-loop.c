/* Per-syscall cost probe for hack/bench-seccomp: times N raw calls of an allowed syscall
 * (getppid), arg-filtered ones (ioctl FIONREAD, personality query, mprotect PROT_READ) and a
 * denied one (acct), printing "name ns_per_call" lines. Built static so it runs as the only
 * file of a container rootfs. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    int fds[2];
    if (pipe(fds) != 0) return 1;
    void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const char *names[] = {"getppid", "ioctl", "personality", "mprotect", "acct"};
    for (int c = 0; c < 5; c++) {
        double best = 1e18;
        for (int round = 0; round < 5; round++) {
            int n;
            double t = now_ns();
            for (long i = 0; i < iters; i++) {
                switch (c) {
                case 0: syscall(SYS_getppid); break;
                case 1: syscall(SYS_ioctl, fds[0], FIONREAD, &n); break;
                case 2: syscall(SYS_personality, 0xffffffffUL); break;
                case 3: syscall(SYS_mprotect, page, 4096, PROT_READ); break;
                case 4: syscall(SYS_acct, NULL); break;
                }
            }
            double per = (now_ns() - t) / iters;
            if (per < best) best = per;
        }
        printf("%s %.1f\n", names[c], best);
    }
    return 0;
}
