/*
 * sockcalls.c - what a process that is not traced pays on each socket call
 * while a tracer is attached (the socket tracepoints fire for every process
 * of the host): the best of ROUNDS timings of N non-blocking recv() calls on
 * an empty socket pair, each of which fires sock_recv_length, in ns a call.
 *   sockcalls [N [ROUNDS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 500000,
				rounds = argc > 2 ? atol(argv[2]) : 5;
	int			sv[2];
	char		b[16];
	double		best = -1;

	if (n <= 0 || rounds <= 0)
	{
		fprintf(stderr, "usage: sockcalls [N [ROUNDS]]\n");
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
	{
		perror("sockcalls: socketpair");
		return 1;
	}
	for (long r = 0; r < rounds; r++)
	{
		struct timespec t0,
					t1;
		double		ns;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long i = 0; i < n; i++)
			if (recv(sv[0], b, sizeof(b), MSG_DONTWAIT) >= 0)
			{
				fprintf(stderr, "sockcalls: an empty socket returned data\n");
				return 1;
			}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns = ((double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec)) / (double) n;
		if (best < 0 || ns < best)
			best = ns;
	}
	printf("%.1f\n", best);
	return 0;
}
