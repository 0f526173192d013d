/*
 * command.c - the one way a tracer command runs: its options (the target's,
 * --help, the names and database options, then its own), the checks before
 * anything is loaded, the "tracing ..." line, attaching to the server
 * binary, and the loop that drains events until the duration, a signal or
 * the target's exit.  A command is left to say what it attaches and how it
 * prints.
 */
#include "tracer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "util.h"

static const struct option target_opts[] = {
	{"bin", required_argument, NULL, PGS_OPT_BIN},
	{"pid", required_argument, NULL, PGS_OPT_PID},
	{"datadir", required_argument, NULL, 'D'},
	{"duration", required_argument, NULL, PGS_OPT_DURATION},
	{"json", no_argument, NULL, PGS_OPT_JSON},
	{"help", no_argument, NULL, PGS_OPT_HELP},
};
static const struct option names_opts[] = {
	{"username", required_argument, NULL, 'U'},
	{"dbname", required_argument, NULL, PGS_OPT_DBNAME},
};
static const struct option database_opt = {"database", required_argument, NULL, 'd'};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* the getopt_long table of command c: the shared options its flags ask for, then its own */
static struct option *
option_table(const PgsCommand *c, char *shortopts, size_t len)
{
	size_t		own = 0,
				n = 0,
				sl;
	struct option *all;

	while (c->opts && c->opts[own].name)
		own++;
	all = calloc(LEN(target_opts) + LEN(names_opts) + 1 + own + 1, sizeof(*all));
	if (all == NULL)
		pgs_die("out of memory");
	for (size_t i = 0; i < LEN(target_opts); i++)
		all[n++] = target_opts[i];
	for (size_t i = 0; (c->flags & PGS_CMD_NAMES) && i < LEN(names_opts); i++)
		all[n++] = names_opts[i];
	if (c->flags & PGS_CMD_DATABASE)
		all[n++] = database_opt;
	/* the leading ':' tells a missing value (':') from an unknown option ('?') */
	snprintf(shortopts, len, ":p:D:%s%s", c->flags & PGS_CMD_NAMES ? "U:" : "", c->flags & PGS_CMD_DATABASE ? "d:" : "");
	for (size_t i = 0; i < own; i++)
	{
		const PgsOptSpec *sp = &c->opts[i];
		bool		arg = sp->kind != PGS_ARG_FLAG && sp->kind != PGS_ARG_CHOICE_OPT;

		all[n++] = (struct option) {sp->name, sp->kind == PGS_ARG_CHOICE_OPT ? optional_argument :
			arg ? required_argument : no_argument, NULL,
			sp->letter ? sp->letter : PGS_OPT_OWN + (int) i};
		sl = strlen(shortopts);
		if (sp->letter && sl + 3 < len)
			snprintf(shortopts + sl, len - sl, "%c%s", sp->letter, arg ? ":" : "");
	}
	return all;
}

/* one of the options every command (or every one with these flags) takes; false: not one */
static bool
shared_option(PgsTracing *tr, int opt, const char *arg)
{
	if (pgs_target_opt(&tr->to, opt, arg))
		return true;
	switch (opt)
	{
		case 'U':
			tr->user = arg;
			return true;
		case PGS_OPT_DBNAME:
			tr->dbname = arg;
			return true;
		case 'd':
			tr->database = arg;
			return true;
	}
	return false;
}

/* the number of word among choices ("a|b|c") from 1, 0 when it is none of them */
static int
choice_of(const char *choices, const char *word)
{
	size_t		wl = strlen(word);
	int			n = 1;

	for (const char *p = choices; *p; n++)
	{
		size_t		l = strcspn(p, "|");

		if (l == wl && strncmp(p, word, l) == 0)
			return n;
		p += l + (p[l] == '|');
	}
	return 0;
}

/* the command's own option sp, given arg, into its state self: exits 2 on a bad value */
static void
take_option(const PgsOptSpec *sp, void *self, const char *arg)
{
	char	   *field = (char *) self + sp->offset,
				flag[64];
	int			err;

	if (sp->letter)
		snprintf(flag, sizeof(flag), "-%c", sp->letter);
	else
		snprintf(flag, sizeof(flag), "--%s", sp->name);
	switch (sp->kind)
	{
		case PGS_ARG_FLAG:
			*(bool *) field = true;
			return;
		case PGS_ARG_DOUBLE:
			if (pgs_parse_double(arg, sp->min, sp->max, (double *) field))
				return;
			break;
		case PGS_ARG_LONG:
			if (pgs_parse_long(arg, (long) sp->min, (long) sp->max, (long *) field))
				return;
			break;
		case PGS_ARG_CHOICE_OPT:
			if (arg == NULL)
			{
				*(int *) field = 1;
				return;
			}
			/* FALLTHROUGH */
		case PGS_ARG_CHOICE:
			if ((*(int *) field = choice_of(sp->choices, arg)) > 0)
				return;
			break;
		case PGS_ARG_OUTPUT:
			/* a file we cannot write is said before anything is traced */
			if ((err = pgs_output_check(arg)) != 0)
				pgs_die("cannot write %s %s: %s", flag, arg, pgs_output_strerror(err));
			*(const char **) field = arg;
			return;
	}
	pgs_usage("%s takes %s, not \"%s\"", flag, sp->what, arg);
}

/* the command's own option opt (a letter, or PGS_OPT_OWN + its index); false: not one of them */
static bool
own_option(const PgsCommand *c, void *self, int opt, const char *arg)
{
	for (int i = 0; c->opts && c->opts[i].name; i++)
		if (opt == (c->opts[i].letter ? c->opts[i].letter : PGS_OPT_OWN + i))
		{
			take_option(&c->opts[i], self, arg);
			return true;
		}
	return false;
}

void
pgs_command_start(const PgsCommand *c, void *self, int argc, char **argv, PgsTracing *tr)
{
	char		shortopts[64];
	struct option *opts = option_table(c, shortopts, sizeof(shortopts));
	int			opt;

	memset(tr, 0, sizeof(*tr));
	tr->to.duration = -1;
	pgs_cmd = c->cmd;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shortopts, opts, NULL)) != -1)
	{
		if (opt == PGS_OPT_HELP)
		{
			fputs(c->usage, stdout);
			exit(0);
		}
		if (opt != '?' && opt != ':' && (shared_option(tr, opt, optarg) || own_option(c, self, opt, optarg)))
			continue;
		pgs_bad_option(argv, optind, opt == ':', c->cmd + strlen("pgscope "));
	}
	free(opts);
	pgs_no_more_args(argc, argv, optind, c->cmd + strlen("pgscope "));
	pgs_tracer_prepare();
	pgs_resolve_target(&tr->t, &tr->to);
	if ((c->flags & PGS_CMD_OFFSETS) && !tr->t.offsets)
		pgs_usage("no struct offsets for PostgreSQL %d: install postgresql-server-dev-%d and rebuild pgscope",
				  tr->t.major, tr->t.major);
}

void
pgs_tracing_says(const PgsTarget *t, const char *what, const char *extra)
{
	fprintf(stderr, "%s: tracing %s%s%s %d (PostgreSQL %d)%s\n", pgs_cmd, what ? what : "", what ? " of " : "",
			t->backend ? "backend" : "the cluster of postmaster", t->backend ? t->backend : t->postmaster,
			t->major, extra ? extra : "");
	fflush(stderr);
}

struct bpf_link *
pgs_attach_func(struct bpf_program *prog, const PgsTarget *t, const char *func, bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = ret);
	uint64_t	off;
	int			rc = pgs_func_offset(t->bin, func, &off);

	if (rc < 0)
	{
		errno = -rc;
		return NULL;
	}
	return bpf_program__attach_uprobe_opts(prog, t->backend ? t->backend : -1, t->bin, (size_t) off, &o);
}

bool
pgs_tls_read_choose(const PgsTarget *t, PgsTlsReadSite *site, struct bpf_program *done, struct bpf_program *entry,
					struct bpf_program *ret)
{
	const char *force = getenv("PGSCOPE_TLS_READ");	/* "be_tls_read": the fallback, as tests/t_clients.sh runs it */
	bool		at_site = !(force && strcmp(force, "be_tls_read") == 0) && pgs_tls_read_site(t->bin, site) == 0;

	bpf_program__set_autoload(done, at_site);
	bpf_program__set_autoload(entry, !at_site);
	bpf_program__set_autoload(ret, !at_site);
	return at_site;
}

bool
pgs_attach_tls_read(const PgsTarget *t, const PgsTlsReadSite *site, struct bpf_program *done, struct bpf_link **done_link,
					struct bpf_program *entry, struct bpf_link **entry_link, struct bpf_program *ret,
					struct bpf_link **ret_link)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o);

	if (bpf_program__autoload(done))
		return (*done_link = bpf_program__attach_uprobe_opts(done, t->backend ? t->backend : -1, t->bin,
															 (size_t) site->offset, &o)) != NULL;
	return (*entry_link = pgs_attach_func(entry, t, "be_tls_read", false)) != NULL &&
		(*ret_link = pgs_attach_func(ret, t, "be_tls_read", true)) != NULL;
}

struct bpf_link *
pgs_attach_probe(struct bpf_program *prog, const PgsTarget *t, const char *name)
{
	return bpf_program__attach_usdt(prog, t->backend ? t->backend : -1, t->bin, "postgresql", name, NULL);
}

uint64_t
pgs_percpu_sum(int fd, uint32_t key)
{
	int			ncpu = libbpf_num_possible_cpus();
	uint64_t   *v = calloc(ncpu > 0 ? ncpu : 1, sizeof(uint64_t)),
				sum = 0;

	if (v && bpf_map_lookup_elem(fd, &key, v) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	free(v);
	return sum;
}

int
pgs_tracer_loop(const PgsLoop *l, const PgsTarget *t, double duration)
{
	double		start,
				next_tick;
	int			wait_ms = l->poll_ms > 0 ? l->poll_ms : 50,
				err = 0;

	if (l->what)
	{
		pgs_tracing_says(t, l->what, l->note);
		pgs_catch_signals();
	}
	start = pgs_now();
	next_tick = start + l->tick_seconds;

	while (!pgs_stop && !pgs_duration_over(start, duration))
	{
		if (l->rb)
		{
			/* events do not wake us (BPF_RB_NO_WAKEUP but for a few): sleep, then drain */
			err = ring_buffer__poll(l->rb, wait_ms);
			if (err >= 0 || err == -EINTR)
				err = ring_buffer__consume(l->rb);
			if (err < 0 && err != -EINTR)
			{
				pgs_err("cannot read events: %s", strerror(-err));
				pgs_ack_stop();
				return EXIT_RUNTIME;
			}
		}
		else
		{
			struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};

			nanosleep(&ts, NULL);	/* a signal cuts it short */
		}
		if (l->tick && l->tick_seconds > 0 && pgs_now() >= next_tick)
		{
			l->tick(l->arg);
			next_tick += l->tick_seconds;
		}
		if (l->every)
		{
			int			next = l->every(l->arg);

			wait_ms = next > 0 ? next : l->poll_ms > 0 ? l->poll_ms : 50;
		}
	}
	pgs_ack_stop();				/* what follows (names, summary) must not be cancelled */
	/* what is already in the buffer still counts */
	if (l->rb)
		ring_buffer__consume(l->rb);
	return 0;
}
