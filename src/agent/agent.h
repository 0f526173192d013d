/*
 * agent.h - "pgscope agent": the tracers as an always-on agent.
 */
#ifndef PGSCOPE_AGENT_H
#define PGSCOPE_AGENT_H

int cmd_agent(int argc, char **argv);

#endif
