/*
 * seccomp_exec RULES PROGRAM [ARG...]: loads the seccomp filter RULES
 * describes (libseccomp, as runc does; RULES "-" loads none), then execs
 * PROGRAM. RULES, written by bench/seccomp.ts from
 * deploy/seccomp/phantun-runtime.json, has one rule per line:
 *   default ERRNO
 *   allow NAME [INDEX:eq:VALUE | INDEX:masked_eq:MASK:VALUE]...
 *   errno ERRNO NAME
 * A name this architecture lacks, and a rule that is the default action
 * itself, are skipped, as runc skips them.
 * Used by `deno task bench` to time the runtime with and without the profile.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fail(const char *what) {
  fprintf(stderr, "seccomp_exec: %s\n", what);
  exit(127);
}

static void load(const char *path) {
  FILE *rules = fopen(path, "r");
  if (!rules) fail("cannot open the rules");
  char line[4096];
  scmp_filter_ctx ctx = NULL;
  while (fgets(line, sizeof line, rules)) {
    char *word = strtok(line, " \n");
    if (!word) continue;
    if (strcmp(word, "default") == 0) {
      ctx = seccomp_init(SCMP_ACT_ERRNO(atoi(strtok(NULL, " \n"))));
      if (!ctx || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0) fail("init");
      continue;
    }
    if (!ctx) fail("the first rule must be the default");
    uint32_t action = SCMP_ACT_ALLOW;
    if (strcmp(word, "errno") == 0) action = SCMP_ACT_ERRNO(atoi(strtok(NULL, " \n")));
    else if (strcmp(word, "allow") != 0) fail("unknown rule");
    int nr = seccomp_syscall_resolve_name(strtok(NULL, " \n"));
    if (nr == __NR_SCMP_ERROR) continue;
    struct scmp_arg_cmp conditions[6];
    unsigned count = 0;
    for (char *cond; (cond = strtok(NULL, " \n")) && count < 6; count++) {
      unsigned index;
      char op[16];
      unsigned long long a, b = 0;
      int fields = sscanf(cond, "%u:%15[a-z_]:%llu:%llu", &index, op, &a, &b);
      if (fields < 3) fail("bad condition");
      conditions[count] = strcmp(op, "eq") == 0
        ? (struct scmp_arg_cmp){index, SCMP_CMP_EQ, a, 0}
        : (struct scmp_arg_cmp){index, SCMP_CMP_MASKED_EQ, a, b};
    }
    int added = seccomp_rule_add_array(ctx, action, nr, count, conditions);
    // -EACCES: the rule is the default action itself; runc skips those too.
    if (added != 0 && added != -EACCES) fail("bad rule");
  }
  fclose(rules);
  if (seccomp_load(ctx) != 0) fail("load");
  seccomp_release(ctx);
}

int main(int argc, char **argv) {
  if (argc < 3) fail("usage: seccomp_exec RULES PROGRAM [ARG...]");
  if (strcmp(argv[1], "-") != 0) load(argv[1]);
  execvp(argv[2], argv + 2);
  fail(strerror(errno));
}
