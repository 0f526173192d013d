/*
 * helpers.bpf.h - small helpers every BPF program of pgscope shares: a map's
 * definition, ordered stores, the log2 histogram slot of a duration, a map entry found or
 * created, per-CPU counters, a backend's wait event, a process's pid in its
 * own namespace.
 */
#ifndef PGSCOPE_HELPERS_BPF_H
#define PGSCOPE_HELPERS_BPF_H

/* a map of type with max_entries entries of key to value, named name */
#define PGS_MAP(name, map_type, entries, key_type, value_type) \
	struct \
	{ \
		__uint(type, map_type); \
		__uint(max_entries, entries); \
		__type(key, key_type); \
		__type(value, value_type); \
	} name SEC(".maps")

/* a compiler barrier, and a store the compiler neither tears nor moves */
#define PGS_BARRIER() asm volatile("" ::: "memory")
#define PGS_WRITE_ONCE(x, v) (*(volatile __typeof__(x) *) &(x) = (v))

/*
 * The slot of a log2 histogram in microseconds for ns: slot i holds
 * [2^i, 2^(i+1)) us, slot 0 also < 1 us, the last one everything above; the
 * same buckets as the user side's pgs_hist_add (src/tracer/hist.c).
 */
static __always_inline __u32
pgs_log2_us_slot(__u64 ns, __u32 nslots)
{
	__u64		us = ns / 1000;
	__u32		slot = 0;

	for (int i = 0; i < 63; i++)
	{
		if (us <= 1 || slot >= nslots - 1)
			break;
		us >>= 1;
		slot++;
	}
	return slot;
}

/*
 * A span timed from an entry probe to its return (or a start probe to its
 * done): the time since *start, which the entry set, and *start cleared; 0
 * when no entry was seen (attached in between, or a nested call).
 */
static __always_inline __u64
pgs_span_end(__u64 *start)
{
	__u64		d = *start ? bpf_ktime_get_ns() - *start : 0;

	*start = 0;
	return d;
}

/* a duration d into stats v: one more of counter, the total, the maximum, the log2 histogram of nslots */
#define PGS_TIMING_ADD(v, counter, d, nslots) \
	do { \
		(v)->counter++; \
		(v)->total_ns += (d); \
		if ((d) > (v)->max_ns) \
			(v)->max_ns = (d); \
		(v)->hist[pgs_log2_us_slot((d), (nslots))]++; \
	} while (0)

/*
 * value (size bytes) under key: written in place when the entry exists (an
 * update costs several lookups' time; on a path run per event that counts),
 * else inserted.
 */
static __always_inline void
pgs_map_put(void *map, const void *key, const void *value, __u32 size)
{
	void	   *v = bpf_map_lookup_elem(map, key);

	if (v)
		__builtin_memcpy(v, value, size);
	else
		bpf_map_update_elem(map, key, value, BPF_ANY);
}

/*
 * The entry of key in a hash map, inserted from init (a zeroed value, which
 * may live in a per-CPU array when it is too large for the stack) when
 * absent; NULL only when the map is full.
 */
static __always_inline void *
pgs_lookup_or_init(void *map, const void *key, const void *init)
{
	void	   *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/*
 * PGS_COUNTERS(n): a per-CPU array "counters" of n __u64 (summed by the user
 * side with pgs_percpu_sum) and count(i), which adds one to counter i.
 */
#define PGS_COUNTERS(n) \
PGS_MAP(counters, BPF_MAP_TYPE_PERCPU_ARRAY, (n), __u32, __u64); \
\
static __always_inline void \
count(__u32 what) \
{ \
	__u64	   *c = bpf_map_lookup_elem(&counters, &what); \
\
	if (c) \
		(*c)++; \
}

/*
 * The backend's wait event now (PGPROC.wait_event_info), through the
 * exported pointer my_wait_event_info at addr (a uint32 *); 0 when unknown.
 * Read in the backend's own context (a switch away from it, a sample).
 */
static __always_inline __u32
pgs_wait_event(__u64 addr)
{
	__u64		p = 0;
	__u32		wei = 0;

	if (addr && !bpf_probe_read_user(&p, sizeof(p), (const void *) addr) && p)
		bpf_probe_read_user(&wei, sizeof(wei), (const void *) p);
	return wei;
}

/*
 * task's process id in the pid namespace it lives in: what the server's own
 * log lines and pg_stat_activity call it (differs from the host's inside a
 * container).  Read in the kernel while the process lives, so that a backend
 * that has exited by the time user space reads its events is still named
 * right.
 */
static __always_inline __u32
pgs_ns_tgid(struct task_struct *task)
{
	struct pid *p = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(p, level);

	return (__u32) BPF_CORE_READ(p, numbers[level & 31].nr);
}

/*
 * A callee-saved register of a uprobe's user registers by its x86-64
 * encoding number (3 rbx, 5 rbp, 12-15 r12-r15): where pgs_tls_read_site
 * found secure_read's buffer; 0 for any other number
 */
static __always_inline __u64
pgs_saved_reg(struct pt_regs *regs, __u32 reg)
{
	/* each a load of its own (volatile): the verifier takes no ctx load at a computed offset */
	__u64		bx = *(volatile unsigned long *) &regs->bx,
				bp = *(volatile unsigned long *) &regs->bp,
				r12 = *(volatile unsigned long *) &regs->r12,
				r13 = *(volatile unsigned long *) &regs->r13,
				r14 = *(volatile unsigned long *) &regs->r14,
				r15 = *(volatile unsigned long *) &regs->r15;

	switch (reg)
	{
		case 3:
			return bx;
		case 5:
			return bp;
		case 12:
			return r12;
		case 13:
			return r13;
		case 14:
			return r14;
		case 15:
			return r15;
	}
	return 0;
}

#endif
