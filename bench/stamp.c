/*
 * stamp: the benchmarks' clock and fake phantun. Every stamp is one line,
 * "WHAT NANOSECONDS" (CLOCK_MONOTONIC), appended to the file $STAMP_FILE.
 *
 *   stamp -- PROGRAM [ARG...]  stamps "start", runs PROGRAM and waits for it,
 *                              then stamps "exit".
 *   stamp --watch PID...       stamps "watching" once it holds a pidfd of
 *                              each PID, then "gone-PID" as each one exits.
 *   stamp [ARG...]             stamps "exec" and exits 0, or with STAMP_WAIT
 *                              set waits for a signal (a fake phantun).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void stamp(const char *what) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  char line[64];
  int length = snprintf(line, sizeof line, "%s %lld\n", what,
                        now.tv_sec * 1000000000LL + now.tv_nsec);
  const char *file = getenv("STAMP_FILE");
  int fd = file ? open(file, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
  if (fd < 0 || write(fd, line, length) != length) _exit(111);
  close(fd);
}

/* Stamps "gone-PID" as each of argv's PIDs exits; pidfds see any process. */
static int watch(int count, char **pids) {
  struct pollfd fds[16];
  if (count < 1 || count > 16) return 111;
  for (int i = 0; i < count; i++) {
    fds[i].fd = (int)syscall(SYS_pidfd_open, atoi(pids[i]), 0);
    fds[i].events = POLLIN;
    if (fds[i].fd < 0) return 111;
  }
  stamp("watching");
  for (int left = count; left > 0;) {
    if (poll(fds, count, -1) < 0) return 111;
    for (int i = 0; i < count; i++) {
      if (fds[i].fd >= 0 && fds[i].revents) {
        char what[32];
        snprintf(what, sizeof what, "gone-%s", pids[i]);
        stamp(what);
        close(fds[i].fd);
        fds[i].fd = -1;
        left--;
      }
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--watch") == 0) {
    return watch(argc - 2, argv + 2);
  }
  if (argc > 2 && strcmp(argv[1], "--") == 0) {
    stamp("start");
    pid_t child = fork();
    if (child == 0) {
      execvp(argv[2], argv + 2);
      _exit(127);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) < 0) return 111;
    stamp("exit");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  stamp("exec");
  if (getenv("STAMP_WAIT")) pause();
  return 0;
}
