/*
 * http.c - a minimal HTTP/1.0-style server for the scrape endpoint: read
 * the request head (at most 8 KB, 5 s), answer GET /metrics in the text
 * exposition format, GET / with a pointer to it, 404 and 405 otherwise,
 * then close.  Signals stay with the main thread.
 */
#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct PgsHttp
{
	int			fd;
	pthread_t	thread;
	atomic_bool stop;
	atomic_ulong requests;
	pgs_http_render render;
	void	   *arg;
};

/* "host:port" or "[v6]:port" into host and port; false when it is neither */
static bool
split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t		n;

	if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	n = (size_t) (colon - addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
	{
		h = addr + 1;
		n -= 2;
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) >= plen)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return true;
}

bool
pgs_http_addr_ok(const char *addr)
{
	char		host[256],
				port[16];

	return split_addr(addr, host, sizeof(host), port, sizeof(port)) && atoi(port) >= 1 && atoi(port) <= 65535;
}

static int
listen_on(const char *addr, char *why, size_t len)
{
	char		host[256],
				port[16];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
			   *res;
	int			fd = -1,
				rc,
				one = 1;

	if (!split_addr(addr, host, sizeof(host), port, sizeof(port)) || atoi(port) < 1 || atoi(port) > 65535)
		return snprintf(why, len, "\"%s\" is not HOST:PORT (e.g. 127.0.0.1:9864)", addr), -1;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return snprintf(why, len, "cannot resolve %s: %s", host, gai_strerror(rc)), -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0)
	{
		snprintf(why, len, "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t) w;
	}
}

static void
reply(int fd, const char *status, const char *type, const char *body, size_t len)
{
	char		head[256];
	int			n = snprintf(head, sizeof(head),
							 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
							 status, type, len);

	send_all(fd, head, (size_t) n);
	send_all(fd, body, len);
}

/* one connection: its request head, then the answer */
static void
serve(PgsHttp *h, int fd)
{
	char		req[8192];
	size_t		got = 0;
	struct timeval tv = {5, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < sizeof(req) - 1)
	{
		ssize_t		r = recv(fd, req + got, sizeof(req) - 1 - got, 0);

		if (r <= 0)
			return;
		got += (size_t) r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = '\0';
	if (strncmp(req, "GET ", 4) != 0)
	{
		reply(fd, "405 Method Not Allowed", "text/plain", "only GET\n", 9);
		return;
	}
	if (strncmp(req + 4, "/metrics ", 9) == 0 || strncmp(req + 4, "/metrics?", 9) == 0)
	{
		PgsBuf		out;

		pgs_buf_init(&out);
		h->render(&out, h->arg);
		reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
		pgs_buf_free(&out);
		atomic_fetch_add(&h->requests, 1);
	}
	else if (strncmp(req + 4, "/ ", 2) == 0)
		reply(fd, "200 OK", "text/plain", "pgscope agent: metrics at /metrics\n", 35);
	else
		reply(fd, "404 Not Found", "text/plain", "not found: try /metrics\n", 24);
}

static void *
run(void *arg)
{
	PgsHttp    *h = arg;

	while (!atomic_load(&h->stop))
	{
		struct pollfd p = {.fd = h->fd, .events = POLLIN};
		int			c;

		if (poll(&p, 1, 200) <= 0)
			continue;
		c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve(h, c);
		close(c);
	}
	return NULL;
}

PgsHttp *
pgs_http_start(const char *addr, pgs_http_render render, void *arg, char *why, size_t len)
{
	PgsHttp    *h;
	sigset_t	all,
				old;
	int			fd = listen_on(addr, why, len);

	if (fd < 0)
		return NULL;
	h = pgs_xmalloc(sizeof(PgsHttp));
	memset(h, 0, sizeof(*h));
	h->fd = fd;
	h->render = render;
	h->arg = arg;
	atomic_init(&h->stop, false);
	atomic_init(&h->requests, 0);
	/* the thread takes no signals: SIGTERM and SIGHUP are the main loop's */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&h->thread, NULL, run, h) != 0)
	{
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		snprintf(why, len, "cannot start the HTTP thread");
		close(fd);
		free(h);
		return NULL;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return h;
}

void
pgs_http_stop(PgsHttp *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->stop, true);
	pthread_join(h->thread, NULL);
	close(h->fd);
	free(h);
}

unsigned long
pgs_http_requests(const PgsHttp *h)
{
	return h ? atomic_load(&((PgsHttp *) h)->requests) : 0;
}
