/*
 * frames.c
 *		The PL/pgSQL frame stack published for samplers (plstack.h), kept
 *		while a tracer holds a 'frames' lease: rebuilt at each call from the
 *		error context chain, where every live PL/pgSQL activation has its
 *		entry (so what an error unwound never survives the next call), and
 *		popped at each return.  Nothing runs per statement: the sampler reads
 *		the current line from the activation's err_stmt.
 */
#include "postgres.h"

#include "pgscope.h"
#include "plstack.h"

PGDLLEXPORT struct pgs_plstack pgscope_plstack = {
	PGS_PLSTACK_MAGIC, PGS_PLSTACK_VERSION, 0, 0,
	offsetof(PLpgSQL_execstate, err_stmt), offsetof(PLpgSQL_stmt, lineno)
};

bool		pgs_publish = false;

/* estate is starting (func_setup): the live activations below it, then it */
void
pgs_publish_call(PLpgSQL_execstate *estate, PLpgSQL_function *func, void (*plpgsql_callback) (void *))
{
	struct pgs_plstack *s = &pgscope_plstack;
	PLpgSQL_execstate *live[PGS_PLSTACK_MAX];
	uint32		n = 0,
				total = 1;
	ErrorContextCallback *e;

	/* innermost first: the last PGS_PLSTACK_MAX - 1 callers are kept, outer ones only counted */
	for (e = error_context_stack; e != NULL; e = e->previous)
		if (e->callback == plpgsql_callback && e->arg != NULL)
		{
			if (n < PGS_PLSTACK_MAX - 1)
				live[n++] = (PLpgSQL_execstate *) e->arg;
			total++;
		}
	/* outermost first, the new activation last */
	for (uint32 i = 0; i < n; i++)
	{
		PLpgSQL_execstate *c = live[n - 1 - i];

		s->frames[i].estate = (uint64) (uintptr_t) c;
		s->frames[i].fn_oid = c->func ? c->func->fn_oid : InvalidOid;
	}
	s->frames[n].estate = (uint64) (uintptr_t) estate;
	s->frames[n].fn_oid = func ? func->fn_oid : InvalidOid;
	s->truncated = total - (n + 1);
	pg_compiler_barrier();
	s->depth = n + 1;
}

/* estate returns: it leaves the stack (and whatever an error left above it) */
void
pgs_publish_return(PLpgSQL_execstate *estate)
{
	struct pgs_plstack *s = &pgscope_plstack;

	for (int i = (int) Min(s->depth, PGS_PLSTACK_MAX) - 1; i >= 0; i--)
		if (s->frames[i].estate == (uint64) (uintptr_t) estate)
		{
			s->depth = (uint32) i;
			return;
		}
}

void
pgs_publish_reset(void)
{
	pgscope_plstack.depth = 0;
	pgscope_plstack.truncated = 0;
}
