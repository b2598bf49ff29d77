/* The pod sandbox ("pause") process of hack/e2e-cri's sandbox image: it holds the pod's
 * namespaces, reaps orphans, and exits 0 on SIGTERM or SIGINT. Built static by hack/e2e-cri. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int sig) {
	(void)sig;
	_exit(0);
}

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void) {
	struct sigaction quit = {.sa_handler = leave};
	struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
	if (sigaction(SIGTERM, &quit, NULL) || sigaction(SIGINT, &quit, NULL) || sigaction(SIGCHLD, &child, NULL))
		return 2;
	for (;;)
		pause();
}
