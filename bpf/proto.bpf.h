/*
 * proto.bpf.h - the client protocol as the BPF programs see it, in one place:
 * a request starts a statement when its first message is a Query, Parse or
 * Bind, and a statement ends with the send whose last message is
 * ReadyForQuery ('Z', int32 5, status).
 */
#ifndef PGSCOPE_PROTO_BPF_H
#define PGSCOPE_PROTO_BPF_H

static __always_inline bool
starts_statement(__u8 type)
{
	return type == 'Q' || type == 'P' || type == 'B';
}

/* n bytes at buf end with ReadyForQuery */
static __always_inline bool
ends_with_ready(__u64 buf, __u64 n)
{
	__u8		tail[6] = {};

	if (n < 6 || bpf_probe_read_user(tail, sizeof(tail), (void *) (buf + n - 6)))
		return false;
	return tail[0] == 'Z' && tail[1] == 0 && tail[2] == 0 && tail[3] == 0 && tail[4] == 5;
}

#endif
