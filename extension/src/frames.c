/*
 * frames.c
 *		The PL/pgSQL frame stack published for samplers (plstack.h): kept
 *		while a tracer holds a 'frames' lease, from the statement and
 *		function-end callbacks, and healed by the activation pointer: a
 *		statement of an activation below the top closes what an error left
 *		above it, one of an unknown activation opens a frame on top, and a
 *		transaction's abort empties the stack.
 */
#include "postgres.h"

#include "pgscope.h"
#include "plstack.h"

PGDLLEXPORT struct pgs_plstack pgscope_plstack = {PGS_PLSTACK_MAGIC, PGS_PLSTACK_VERSION, 0, 0};

bool		pgs_publish = false;

void
pgs_publish_stmt_slow(PLpgSQL_execstate *estate, PLpgSQL_stmt *stmt)
{
	struct pgs_plstack *s = &pgscope_plstack;
	int			i;

	/* an activation below the top: what an error unwound above it is gone */
	for (i = (int) Min(s->depth, PGS_PLSTACK_MAX) - 1; i >= 0; i--)
		if (s->frames[i].estate == (uint64) (uintptr_t) estate)
		{
			s->frames[i].lineno = stmt->lineno;
			pg_compiler_barrier();
			s->depth = (uint32) i + 1;
			s->truncated = 0;
			return;
		}
	/* a new activation (its first statement, or the first since the lease began) */
	if (s->depth >= PGS_PLSTACK_MAX)
	{
		s->truncated++;
		return;
	}
	s->frames[s->depth].estate = (uint64) (uintptr_t) estate;
	s->frames[s->depth].fn_oid = estate->func ? estate->func->fn_oid : InvalidOid;
	s->frames[s->depth].lineno = stmt->lineno;
	pg_compiler_barrier();
	s->depth++;
}

void
pgs_publish_func_end(PLpgSQL_execstate *estate)
{
	struct pgs_plstack *s = &pgscope_plstack;

	if (s->truncated > 0)
	{
		s->truncated--;
		return;
	}
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
