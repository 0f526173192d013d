/*
 * nettotals.bpf.h - a backend's client traffic, in one place for the network
 * tracer and for the statement tracer that keeps it too (the agent: one
 * program per socket event instead of two): bytes and calls on the client
 * socket, and the time spent serving requests (a request to ReadyForQuery)
 * against the time spent waiting for the client (ReadyForQuery to the next
 * request).  Bytes are what crossed the socket (for TLS, the encrypted
 * records); requests and ReadyForQuery of TLS connections come in plain text
 * from be_tls_read/be_tls_write.  A request is a round trip: a pipeline of
 * many statements is one.  Include after proto.bpf.h and helpers.bpf.h.
 */
#ifndef PGSCOPE_NETTOTALS_BPF_H
#define PGSCOPE_NETTOTALS_BPF_H

#include "../net/net.h"

struct net_state
{
	__u64		serving_since;
	__u64		idle_since;
	struct pgs_net_backend n;
};

/* copied out of task storage for user space, per backend pid */
PGS_MAP(net_totals, BPF_MAP_TYPE_HASH, 8192, __u32, struct pgs_net_backend);

/* the backend's totals into its entry, for user space */
static __always_inline void
net_publish(struct net_state *s)
{
	__u32		pid = bpf_get_current_pid_tgid() >> 32;

	pgs_map_put(&net_totals, &pid, &s->n, sizeof(s->n));
}

/*
 * bytes the backend read (plain, or TLS plain text), whose first byte is
 * type: the first message of a request starts serving (now: the time, 0 to
 * read the clock here)
 */
static __always_inline void
net_request(struct net_state *s, __u8 type, __u64 now)
{
	if (s->serving_since || !starts_statement(type))
		return;
	if (!now)
		now = bpf_ktime_get_ns();
	if (s->idle_since)
		s->n.client_ns += now - s->idle_since;
	s->idle_since = 0;
	s->serving_since = now;
	s->n.requests++;
}

/* the same from the bytes at buf */
static __always_inline void
net_request_read(struct net_state *s, __u64 buf, __u64 now)
{
	__u8		type = 0;

	if (!s->serving_since && !bpf_probe_read_user(&type, 1, (void *) buf))
		net_request(s, type, now);
}

/*
 * bytes the backend sent: ReadyForQuery at their end closes the request
 * (ready: whether they end with it, when the caller knows, else -1)
 */
static __always_inline void
net_answer_sent(struct net_state *s, __u64 buf, __u64 n, int ready, __u64 now)
{
	if (s->serving_since && (ready < 0 ? ends_with_ready(buf, n) : ready))
	{
		if (!now)
			now = bpf_ktime_get_ns();
		s->n.serving_ns += now - s->serving_since;
		s->serving_since = 0;
		s->idle_since = now;
	}
}

/*
 * A socket read (ret bytes at buf) or write of the backend (ready and now
 * as above); a TLS record
 * starts with 0x14..0x17, never a message type, so for TLS connections the
 * socket reads count bytes only and requests come from be_tls_read.
 */
static __always_inline void
net_socket(struct net_state *s, __u64 buf, int ret, bool send, int ready, __u64 now)
{
	if (send)
	{
		s->n.bytes_out += ret;
		s->n.sends++;
		net_answer_sent(s, buf, ret, ready, now);
	}
	else
	{
		s->n.bytes_in += ret;
		s->n.recvs++;
		net_request_read(s, buf, now);
	}
	net_publish(s);
}

/*
 * A socket read whose first byte the caller has (first), no read of its own.
 * A read of a request being served is published with its answer (the send
 * that ends the request publishes), one map update per statement instead of
 * two; but every 16th such read, so that a long request (a COPY FROM) shows
 * its bytes as they come, and the caller publishes at the connection's end.
 */
static __always_inline void
net_received(struct net_state *s, int ret, __u8 first, __u64 now)
{
	s->n.bytes_in += ret;
	s->n.recvs++;
	net_request(s, first, now);
	if (!s->serving_since || (s->n.recvs & 15) == 0)
		net_publish(s);
}

#endif
