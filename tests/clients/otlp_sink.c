/*
 * otlp_sink.c - a stand-in OTLP/HTTP receiver for the agent's tests: listens
 * on 127.0.0.1:PORT, keeps each POSTed body as DIR/NNNNNN.json and answers
 * 200, or 503 while DIR/fail exists (a receiver that is down).  It checks
 * nothing itself: the test reads what was sent.
 *   otlp_sink PORT DIR
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
serve(int c, const char *dir, int *seq)
{
	static char buf[64 * 1024 * 1024];
	size_t		got = 0,
				need = 0;
	char	   *body = NULL,
				path[4096];
	const char *reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
	FILE	   *f;

	while (got < sizeof(buf) - 1)
	{
		ssize_t		r = recv(c, buf + got, sizeof(buf) - 1 - got, 0);

		if (r <= 0)
			return;
		got += (size_t) r;
		buf[got] = '\0';
		if (body == NULL && (body = strstr(buf, "\r\n\r\n")) != NULL)
		{
			const char *cl = strcasestr(buf, "Content-Length:");

			body += 4;
			need = (size_t) (body - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (body && got >= need)
			break;
	}
	snprintf(path, sizeof(path), "%s/fail", dir);
	if (access(path, F_OK) == 0)
		reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	else if (body)
	{
		snprintf(path, sizeof(path), "%s/%06d.json", dir, (*seq)++);
		if ((f = fopen(path, "w")) != NULL)
		{
			fwrite(body, 1, got - (size_t) (body - buf), f);
			fclose(f);
		}
	}
	send(c, reply, strlen(reply), MSG_NOSIGNAL);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int			fd = socket(AF_INET, SOCK_STREAM, 0),
				one = 1,
				seq = 0;

	if (argc != 3)
	{
		fprintf(stderr, "usage: otlp_sink PORT DIR\n");
		return 2;
	}
	a.sin_port = htons((unsigned short) atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0 || listen(fd, 16) != 0)
	{
		perror("otlp_sink");
		return 1;
	}
	for (;;)
	{
		int			c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		serve(c, argv[2], &seq);
		close(c);
	}
}
