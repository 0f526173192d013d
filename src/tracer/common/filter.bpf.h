/*
 * filter.bpf.h - which processes a tracer traces, in one place for every BPF
 * program: one backend (filter_pid), the backends of one postmaster
 * (filter_ppid: forked children, so their parent is the postmaster), or
 * every process named "postgres".  Include after declaring nothing else
 * with these names.
 */
#ifndef PGSCOPE_FILTER_BPF_H
#define PGSCOPE_FILTER_BPF_H

const volatile __u32 filter_ppid = 0;
const volatile __u32 filter_pid = 0;

/*
 * From the task pointer bpf_get_current_task_btf() gives: plain loads, cheap
 * enough for tp_btf programs to take on every event instead of remembering
 * the decision in task storage, so tasks that are not traced never get any.
 */
static __always_inline bool
traced_task(struct task_struct *t)
{
	if (filter_pid)
		return t->tgid == filter_pid;
	if (filter_ppid)
		return t->real_parent->tgid == filter_ppid;
	return t->comm[0] == 'p' && t->comm[1] == 'o' && t->comm[2] == 's' && t->comm[3] == 't' &&
		t->comm[4] == 'g' && t->comm[5] == 'r' && t->comm[6] == 'e' && t->comm[7] == 's' && t->comm[8] == 0;
}

/*
 * PGS_TASK_STATE(vtype): a task-storage map "tasks" of vtype (which has
 * __u32 fields decided and ignored) and state(), which returns the current
 * task's value, or NULL when the task is not traced; the decision is taken
 * once per task.
 */
#define PGS_TASK_STATE(vtype) \
struct \
{ \
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE); \
	__uint(map_flags, BPF_F_NO_PREALLOC); \
	__type(key, int); \
	__type(value, vtype); \
} tasks SEC(".maps"); \
\
static __always_inline vtype * \
state(void) \
{ \
	vtype	   *s = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, \
										 BPF_LOCAL_STORAGE_GET_F_CREATE); \
\
	if (!s) \
		return NULL; \
	if (!s->decided) \
	{ \
		s->decided = 1; \
		s->ignored = !traced_task(bpf_get_current_task_btf()); \
	} \
	return s->ignored ? NULL : s; \
}

#endif
