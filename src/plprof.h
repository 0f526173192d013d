/*
 * plprof.h - "pgscope plprof ...": the PL/pgSQL profiler's command line.
 */
#ifndef PGSCOPE_PLPROF_H
#define PGSCOPE_PLPROF_H

int cmd_plprof(int argc, char **argv);

/* "run" with its own argv (argv[0] = "run"), for the demo */
int cmd_plprof_run_argv(int argc, char **argv);

#endif
