/*
 * demo.h - "pgscope demo".
 */
#ifndef PGSCOPE_DEMO_H
#define PGSCOPE_DEMO_H

int cmd_demo(int argc, char **argv);

#endif
