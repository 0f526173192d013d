/*
 * tracer_cmds.h - the eBPF tracer's subcommands.
 */
#ifndef PGSCOPE_TRACER_CMDS_H
#define PGSCOPE_TRACER_CMDS_H

int cmd_queries(int argc, char **argv);
int cmd_latency(int argc, char **argv);
int cmd_targets(int argc, char **argv);
int cmd_locks(int argc, char **argv);
int cmd_lwlocks(int argc, char **argv);
int cmd_wal(int argc, char **argv);
int cmd_io(int argc, char **argv);
int cmd_net(int argc, char **argv);
int cmd_plans(int argc, char **argv);
int cmd_profile(int argc, char **argv);

#endif
