/*
 * net.h - what the network tracer's BPF program and its user side share.
 */
#ifndef PGSCOPE_NET_H
#define PGSCOPE_NET_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct pgs_net_backend
{
	__u64		bytes_in;
	__u64		bytes_out;
	__u64		recvs;			/* recvfrom calls that returned data */
	__u64		sends;
	__u64		requests;		/* statements the client asked for */
	__u64		serving_ns;		/* from a request to ReadyForQuery */
	__u64		client_ns;		/* from ReadyForQuery to the next request */
};

#endif
