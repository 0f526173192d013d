/*
 * stmttree.c
 *		The walk over a PL/pgSQL function's statement tree that notes, for
 *		each statement of the local profile, its statement list, its position
 *		in it and the PGS_SEQ_* flags.
 *
 * The executor hooks (plugin.c) use these to skip a clock read where nothing
 * but PL/pgSQL's own list and loop-counter steps ran since the previous
 * callback; its header says which neighbours qualify, and this walk is where
 * each statement type's rule lives.  Statements are found by stmtid, which
 * PL/pgSQL numbers 1..nstatements at compile time (PostgreSQL 14 and later).
 */
#include "postgres.h"

#include "miscadmin.h"

#include "pgscope.h"

typedef struct PgsSeqWalk
{
	PgsFunc    *fn;
	uint32		nlists;			/* lists numbered so far */
} PgsSeqWalk;

static void seq_stmt(PgsSeqWalk *w, PLpgSQL_stmt *stmt);

static inline PgsStmt *
seq_entry(PgsSeqWalk *w, PLpgSQL_stmt *stmt)
{
	if (stmt->stmtid > 0 && stmt->stmtid <= (unsigned) w->fn->nstmts)
		return &w->fn->stmts[stmt->stmtid];
	return NULL;
}

/* one of parent's statement lists; first_flags go to its first statement */
static void
seq_list(PgsSeqWalk *w, PLpgSQL_stmt *parent, List *stmts, uint8 first_flags)
{
	ListCell   *lc;
	uint32		list = ++w->nlists;
	int			pos = 0;

	foreach(lc, stmts)
	{
		PLpgSQL_stmt *stmt = (PLpgSQL_stmt *) lfirst(lc);
		PgsStmt    *st = seq_entry(w, stmt);

		if (st)
		{
			st->list = list;
			st->parent = parent->stmtid;
			st->pos = (uint16) Min(pos, PG_UINT16_MAX);
			st->seqflags |= pos == 0 ? first_flags : 0;
		}
		pos++;
		seq_stmt(w, stmt);
	}
}

static void
seq_stmt(PgsSeqWalk *w, PLpgSQL_stmt *stmt)
{
	PgsStmt    *st = seq_entry(w, stmt);
	uint8		tail = 0;
	ListCell   *lc;

	check_stack_depth();
	switch (stmt->cmd_type)
	{
		case PLPGSQL_STMT_BLOCK:
			{
				PLpgSQL_stmt_block *b = (PLpgSQL_stmt_block *) stmt;

				seq_list(w, stmt, b->body,
						 b->n_initvars == 0 && b->exceptions == NULL ? PGS_SEQ_HEAD : 0);
				if (b->exceptions)
				{
					foreach(lc, b->exceptions->exc_list)
						seq_list(w, stmt, ((PLpgSQL_exception *) lfirst(lc))->action, 0);
				}
				else
					tail = PGS_SEQ_TAIL;
				break;
			}
		case PLPGSQL_STMT_IF:
			{
				PLpgSQL_stmt_if *i = (PLpgSQL_stmt_if *) stmt;

				seq_list(w, stmt, i->then_body, 0);
				foreach(lc, i->elsif_list)
					seq_list(w, stmt, ((PLpgSQL_if_elsif *) lfirst(lc))->stmts, 0);
				seq_list(w, stmt, i->else_body, 0);
				tail = PGS_SEQ_TAIL;
				break;
			}
		case PLPGSQL_STMT_CASE:
			{
				PLpgSQL_stmt_case *c = (PLpgSQL_stmt_case *) stmt;

				foreach(lc, c->case_when_list)
					seq_list(w, stmt, ((PLpgSQL_case_when *) lfirst(lc))->stmts, 0);
				seq_list(w, stmt, c->else_stmts, 0);
				tail = PGS_SEQ_TAIL;
				break;
			}
		case PLPGSQL_STMT_LOOP:
			seq_list(w, stmt, ((PLpgSQL_stmt_loop *) stmt)->body, PGS_SEQ_WRAP | PGS_SEQ_HEAD);
			tail = PGS_SEQ_TAIL;
			break;
		case PLPGSQL_STMT_FORI:
			/* its bounds are evaluated after it starts: no HEAD */
			seq_list(w, stmt, ((PLpgSQL_stmt_fori *) stmt)->body, PGS_SEQ_WRAP);
			tail = PGS_SEQ_TAIL;
			break;
			/* a condition, a fetch or an array step runs between iterations */
		case PLPGSQL_STMT_WHILE:
			seq_list(w, stmt, ((PLpgSQL_stmt_while *) stmt)->body, 0);
			break;
		case PLPGSQL_STMT_FORS:
		case PLPGSQL_STMT_FORC:
		case PLPGSQL_STMT_DYNFORS:
			seq_list(w, stmt, ((PLpgSQL_stmt_forq *) stmt)->body, 0);
			break;
		case PLPGSQL_STMT_FOREACH_A:
			seq_list(w, stmt, ((PLpgSQL_stmt_foreach_a *) stmt)->body, 0);
			break;
		default:
			break;
	}
	if (st)
		st->seqflags |= tail;
}

/* Note every statement's list, position and PGS_SEQ_* flags, afresh. */
void
pgs_number_statements(PgsFunc *fn, PLpgSQL_function *func)
{
	PgsSeqWalk	w = {fn, 0};

	for (int i = 0; i <= fn->nstmts; i++)
	{
		fn->stmts[i].list = fn->stmts[i].parent = 0;
		fn->stmts[i].pos = 0;
		fn->stmts[i].seqflags = 0;
	}
	if (func->action)
		seq_stmt(&w, (PLpgSQL_stmt *) func->action);
}
