/*
 * expo.c - families of samples, written grouped (see expo.h).
 */
#include "expo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Family
{
	char	   *name;
	const char *type;
	const char *help;
	PgsBuf		lines;
} Family;

struct PgsExpo
{
	Family	   *f;
	size_t		n,
				cap;
};

PgsExpo *
pgs_expo_new(void)
{
	PgsExpo    *e = pgs_xmalloc(sizeof(PgsExpo));

	memset(e, 0, sizeof(*e));
	return e;
}

void
pgs_expo_free(PgsExpo *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++)
	{
		free(e->f[i].name);
		pgs_buf_free(&e->f[i].lines);
	}
	free(e->f);
	free(e);
}

void
pgs_expo_label(PgsBuf *b, const char *key, const char *value)
{
	pgs_buf_printf(b, "%s%s=\"", b->len ? "," : "", key);
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\' || *p == '"')
			pgs_buf_append(b, "\\", 1);
		if (*p == '\n')
			pgs_buf_puts(b, "\\n");
		else
			pgs_buf_append(b, p, 1);
	}
	pgs_buf_puts(b, "\"");
}

static Family *
family_of(PgsExpo *e, const char *name, const char *type, const char *help)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->f[i].name, name) == 0)
			return &e->f[i];
	e->f = pgs_grow(e->f, &e->cap, e->n + 1, sizeof(Family));
	e->f[e->n] = (Family) {pgs_xstrdup(name), type, help, {0}};
	pgs_buf_init(&e->f[e->n].lines);
	return &e->f[e->n++];
}

static void
line(Family *f, const char *name, const char *labels, const char *extra, double v)
{
	bool		any = (labels && *labels) || (extra && *extra);

	pgs_buf_puts(&f->lines, name);
	if (any)
		pgs_buf_printf(&f->lines, "{%s%s%s}", labels ? labels : "", labels && *labels && extra && *extra ? "," : "",
					   extra ? extra : "");
	/* counts as integers, times with nanoseconds */
	if (v == (double) (uint64_t) v && v < 9007199254740992.0)
		pgs_buf_printf(&f->lines, " %.0f\n", v);
	else
		pgs_buf_printf(&f->lines, " %.9f\n", v);
}

void
pgs_expo_sample(PgsExpo *e, const char *name, const char *type, const char *help, const char *labels, double v)
{
	line(family_of(e, name, type, help), name, labels, NULL, v);
}

void
pgs_expo_hist(PgsExpo *e, const char *name, const char *help, const char *labels, const double *le,
			  const uint64_t *counts, int nbuckets, uint64_t total, double sum)
{
	Family	   *f = family_of(e, name, "histogram", help);
	char		n[256],
				bound[64];
	uint64_t	cum = 0;

	snprintf(n, sizeof(n), "%s_bucket", name);
	for (int i = 0; i < nbuckets; i++)
	{
		cum += counts[i];
		snprintf(bound, sizeof(bound), "le=\"%g\"", le[i]);
		line(f, n, labels, bound, (double) cum);
	}
	line(f, n, labels, "le=\"+Inf\"", (double) total);
	snprintf(n, sizeof(n), "%s_sum", name);
	line(f, n, labels, NULL, sum);
	snprintf(n, sizeof(n), "%s_count", name);
	line(f, n, labels, NULL, (double) total);
}

void
pgs_expo_log2_hist(PgsExpo *e, const char *name, const char *help, const char *labels,
				   const uint64_t *slots, int nslots, double sum_seconds)
{
	double		le[64];
	uint64_t	total = 0;

	for (int i = 0; i < nslots && i < 64; i++)
	{
		le[i] = (double) (1ULL << (i + 1)) / 1e6;
		total += slots[i];
	}
	pgs_expo_hist(e, name, help, labels, le, slots, nslots < 64 ? nslots : 64, total, sum_seconds);
}

void
pgs_expo_write(PgsExpo *e, PgsBuf *out)
{
	for (size_t i = 0; i < e->n; i++)
	{
		pgs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", e->f[i].name, e->f[i].help, e->f[i].name, e->f[i].type);
		pgs_buf_append(out, e->f[i].lines.data, e->f[i].lines.len);
	}
}
