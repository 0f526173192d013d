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

static __always_inline bool
traced(__u32 tgid)
{
	if (filter_pid)
		return tgid == filter_pid;
	if (filter_ppid)
	{
		struct task_struct *t = (struct task_struct *) bpf_get_current_task();

		return BPF_CORE_READ(t, real_parent, tgid) == filter_ppid;
	}
	{
		char		comm[16];

		bpf_get_current_comm(comm, sizeof(comm));
		return comm[0] == 'p' && comm[1] == 'o' && comm[2] == 's' && comm[3] == 't' &&
			comm[4] == 'g' && comm[5] == 'r' && comm[6] == 'e' && comm[7] == 's' && comm[8] == 0;
	}
}

#endif
