/*
 * report_check.c - opens a pgscope HTML report in headless Chromium through
 * chromedriver (the W3C WebDriver protocol over loopback HTTP) and checks it
 * the way a person would: the flame graph shows the expected function names,
 * a click on a frame zooms in, a search highlights matches.  A screenshot is
 * kept.  Exit 0 when every check passed, 1 otherwise.
 *
 *   report_check REPORT.html SCREENSHOT.png CLICK_NAME SEARCH EXPECTED_NAME...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int	driver_port;
static pid_t driver_pid = -1;
static char session[128];
static char udd[] = "/tmp/pgscope-chromium.XXXXXX";	/* the browser's profile */
static int	failures = 0;

static void
check(bool ok, const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	printf("%s: ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!ok)
		failures++;
}

static void
stop_driver(void)
{
	if (driver_pid > 0)
	{
		kill(driver_pid, SIGTERM);
		waitpid(driver_pid, NULL, 0);
		driver_pid = -1;
	}
	if (strchr(udd, 'X') == NULL)
	{
		char		cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", udd);
		if (system(cmd) != 0)
			fprintf(stderr, "report_check: could not remove %s\n", udd);
		strcpy(udd, "/tmp/pgscope-chromium.XXXXXX");
	}
}

static _Noreturn void
die(const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "report_check: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	stop_driver();
	exit(1);
}

static int
free_port(void)
{
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	socklen_t	len = sizeof(a);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof(a)) != 0 ||
		getsockname(s, (struct sockaddr *) &a, &len) != 0)
		die("cannot find a free port: %s", strerror(errno));
	close(s);
	return ntohs(a.sin_port);
}

/* One HTTP/1.1 request to chromedriver; returns the malloc'd body or NULL. */
static char *
http(const char *method, const char *path, const char *body)
{
	int			s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	char	   *req;
	size_t		cap = 65536,
				len = 0;
	char	   *resp;
	ssize_t		n;
	char	   *sep;
	int			reqlen;

	a.sin_family = AF_INET;
	a.sin_port = htons(driver_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *) &a, sizeof(a)) != 0)
	{
		if (s >= 0)
			close(s);
		return NULL;
	}
	reqlen = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
					  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
					  method, path, driver_port, body ? strlen(body) : 0, body ? body : "");
	if (reqlen < 0 || write(s, req, reqlen) != reqlen)
		die("cannot send a request to chromedriver");
	free(req);
	/* chromedriver keeps the connection open: read the headers, then Content-Length bytes */
	resp = malloc(cap);
	resp[0] = '\0';
	sep = NULL;
	for (;;)
	{
		size_t		want = 0;

		if (sep == NULL && (sep = strstr(resp, "\r\n\r\n")) == NULL)
			want = 0;
		if (sep)
		{
			const char *cl = strcasestr(resp, "content-length:");
			size_t		body_len = cl && cl < sep ? strtoul(cl + 15, NULL, 10) : 0;

			want = (size_t) (sep + 4 - resp) + body_len;
			if (len >= want)
				break;
		}
		if (cap - len < 4096 || (want && want + 1 > cap))
		{
			size_t		off = sep ? (size_t) (sep - resp) : 0;

			cap = (want + 1 > cap * 2) ? want + 1 : cap * 2;
			resp = realloc(resp, cap);
			if (sep)
				sep = resp + off;
		}
		n = read(s, resp + len, cap - len - 1);
		if (n <= 0)
			break;
		len += n;
		resp[len] = '\0';
	}
	close(s);
	resp[len] = '\0';
	sep = strstr(resp, "\r\n\r\n");
	if (sep == NULL)
	{
		free(resp);
		return NULL;
	}
	memmove(resp, sep + 4, strlen(sep + 4) + 1);
	return resp;
}

/* The JSON string value following "key": in json, unescaped (malloc'd), or NULL. */
static char *
json_string(const char *json, const char *key)
{
	char		pat[256];
	const char *p;
	char	   *out,
			   *o;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p != '"')
		return NULL;
	p++;
	out = o = malloc(strlen(p) + 1);
	while (*p && *p != '"')
	{
		if (*p == '\\' && p[1])
		{
			p++;
			switch (*p)
			{
				case 'n':
					*o++ = '\n';
					break;
				case 't':
					*o++ = '\t';
					break;
				case 'u':
					{
						unsigned	cp = 0;

						sscanf(p + 1, "%4x", &cp);
						p += 4;
						/* the checks only look at ASCII; others become '?' */
						*o++ = cp < 0x80 ? (char) cp : '?';
						break;
					}
				default:
					*o++ = *p;
			}
			p++;
		}
		else
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

/* JSON string literal of s (malloc'd) */
static char *
json_quote(const char *s)
{
	char	   *out = malloc(strlen(s) * 6 + 3),
			   *o = out;

	*o++ = '"';
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
		{
			*o++ = '\\';
			*o++ = *s;
		}
		else if ((unsigned char) *s < 0x20)
			o += sprintf(o, "\\u%04x", *s);
		else
			*o++ = *s;
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

static char *
session_call(const char *method, const char *what, const char *body)
{
	char		path[512];
	char	   *r;

	snprintf(path, sizeof(path), "/session/%s%s", session, what);
	r = http(method, path, body);
	if (r == NULL)
		die("chromedriver did not answer %s %s", method, what);
	if (strstr(r, "\"error\""))
		die("%s %s failed: %.400s", method, what, r);
	return r;
}

/*
 * POSTs to the session's path the JSON object fmt (one %s: arg as a JSON
 * string) and returns the string member key of the answer (malloc'd), or
 * NULL when it has none.
 */
static char *
post_for_string(const char *path, const char *fmt, const char *arg, const char *key)
{
	char	   *q = json_quote(arg);
	char	   *body,
			   *r,
			   *v;

	if (asprintf(&body, fmt, q) < 0)
		die("out of memory");
	r = session_call("POST", path, body);
	v = json_string(r, key);
	free(q);
	free(body);
	free(r);
	return v;
}

/* runs a script returning a string; the result (malloc'd) */
static char *
run_script(const char *script)
{
	char	   *v = post_for_string("/execute/sync", "{\"script\":%s,\"args\":[]}", script, "value");

	return v ? v : strdup("");
}

static char *
find_element(const char *css)
{
	char	   *id = post_for_string("/element", "{\"using\":\"css selector\",\"value\":%s}", css,
									 "element-6066-11e4-a52e-4f735466cecf");

	if (id == NULL)
		die("no element %s", css);
	return id;
}

/* clicks the element css finds */
static void
click(const char *css)
{
	char	   *id = find_element(css);
	char	   *path;

	if (asprintf(&path, "/element/%s/click", id) < 0)
		die("out of memory");
	free(session_call("POST", path, "{}"));
	free(path);
	free(id);
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static void
save_screenshot(const char *path)
{
	char	   *r = session_call("GET", "/screenshot", NULL);
	char	   *b64 = json_string(r, "value");
	FILE	   *f;
	unsigned	acc = 0;
	int			bits = 0;
	size_t		bytes = 0;

	if (b64 == NULL)
		die("no screenshot in the answer");
	f = fopen(path, "wb");
	if (f == NULL)
		die("cannot write %s: %s", path, strerror(errno));
	for (const char *p = b64; *p; p++)
	{
		int			v = b64val(*p);

		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			fputc((acc >> bits) & 0xFF, f);
			bytes++;
		}
	}
	fclose(f);
	check(bytes > 1000, "screenshot saved to %s (%zu bytes)", path, bytes);
	free(b64);
	free(r);
}

static void
start_driver(void)
{
	char		portarg[32];
	struct timespec ts = {0, 100 * 1000 * 1000};

	driver_port = free_port();
	snprintf(portarg, sizeof(portarg), "--port=%d", driver_port);
	driver_pid = fork();
	if (driver_pid == 0)
	{
		int			devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
		{
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execlp("chromedriver", "chromedriver", portarg, (char *) NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++)
	{
		char	   *r = http("GET", "/status", NULL);

		if (r && strstr(r, "\"ready\""))
		{
			free(r);
			return;
		}
		free(r);
		nanosleep(&ts, NULL);
	}
	die("chromedriver did not start (is the chromium-driver package installed?)");
}

int
main(int argc, char **argv)
{
	char		abs[PATH_MAX];
	char	   *body,
			   *r,
			   *v,
			   *sid,
			   *id,
			   *q,
			   *script;
	struct timespec ts = {0, 100 * 1000 * 1000};

	if (argc < 6)
	{
		fprintf(stderr, "usage: report_check REPORT.html SCREENSHOT.png CLICK_NAME SEARCH EXPECTED_NAME...\n");
		return 2;
	}
	if (realpath(argv[1], abs) == NULL)
		die("cannot find %s: %s", argv[1], strerror(errno));
	if (mkdtemp(udd) == NULL)
		die("cannot create a profile directory: %s", strerror(errno));

	start_driver();
	/* the flags keep Chromium off the network it does not have here */
	if (asprintf(&body,
				 "{\"capabilities\":{\"alwaysMatch\":{\"browserName\":\"chrome\",\"goog:chromeOptions\":{"
				 "\"binary\":\"/usr/bin/chromium\",\"args\":[\"--headless\",\"--no-sandbox\",\"--disable-gpu\","
				 "\"--disable-quic\",\"--no-first-run\",\"--disable-background-networking\","
				 "\"--disable-component-update\",\"--disable-sync\",\"--window-size=1280,1000\","
				 "\"--user-data-dir=%s\"]}}}}", udd) < 0)
		die("out of memory");
	r = http("POST", "/session", body);
	if (r == NULL || (sid = json_string(r, "sessionId")) == NULL)
		die("cannot start a browser session: %.400s", r ? r : "no answer");
	snprintf(session, sizeof(session), "%s", sid);
	free(r);
	free(body);

	q = malloc(strlen(abs) + 16);
	sprintf(q, "file://%s", abs);
	v = json_quote(q);
	if (asprintf(&body, "{\"url\":%s}", v) < 0)
		die("out of memory");
	free(session_call("POST", "/url", body));
	free(body);

	for (int i = 0; i < 50; i++)
	{
		v = run_script("return document.body.getAttribute('data-ready') || ''");
		if (strcmp(v, "true") == 0)
			break;
		free(v);
		v = NULL;
		nanosleep(&ts, NULL);
	}
	check(v != NULL, "the report's script ran");

	/* the flame graph shows the expected functions */
	v = run_script("return Array.from(document.querySelectorAll('#flame .frame')).map(function (e) {"
				   " return e.getAttribute('data-name'); }).join('\\n')");
	for (int i = 5; i < argc; i++)
	{
		char	   *line = strstr(v, argv[i]);

		check(line != NULL, "flame graph shows %s", argv[i]);
	}
	free(v);

	/* a click on a frame zooms into it: it spans the whole width */
	q = json_quote(argv[3]);
	if (asprintf(&script, "#flame .frame[data-name=%s]", q) < 0)
		die("out of memory");
	click(script);
	free(script);
	v = run_script("return document.getElementById('flame').getAttribute('data-zoom')");
	check(strcmp(v, argv[3]) == 0, "click zoomed into %s (zoom is \"%s\")", argv[3], v);
	free(v);
	if (asprintf(&script, "var e = document.querySelector('#flame .frame[data-name=' + JSON.stringify(%s) + ']:not(.ancestor)');"
				 " return e ? e.style.width : 'missing'", q) < 0)
		die("out of memory");
	v = run_script(script);
	check(strcmp(v, "100%") == 0, "the zoomed frame spans the width (%s)", v);
	free(v);
	free(script);
	free(q);

	/* search highlights matching frames */
	id = find_element("#search");
	q = json_quote(argv[4]);
	if (asprintf(&body, "{\"text\":%s}", q) < 0)
		die("out of memory");
	if (asprintf(&script, "/element/%s/value", id) < 0)
		die("out of memory");
	free(session_call("POST", script, body));
	free(script);
	free(body);
	v = run_script("return String(document.querySelectorAll('#flame .frame.match').length)");
	check(atoi(v) > 0, "search \"%s\" highlights %s frames", argv[4], v);
	free(v);
	v = run_script("return document.getElementById('search-result').textContent");
	check(strstr(v, "match") != NULL, "search result says \"%s\"", v);
	free(v);
	save_screenshot(argv[2]);

	/* reset returns to the whole profile */
	click("#reset");
	v = run_script("return document.getElementById('flame').getAttribute('data-zoom')");
	check(strcmp(v, "all") == 0, "reset zoom shows everything again");
	free(v);

	/* REPORT_GROUP=VALUE=NAME (a CPU profile): that grouping chosen, NAME is a frame of the first level */
	if (getenv("REPORT_GROUP") && strchr(getenv("REPORT_GROUP"), '='))
	{
		char	   *want = strdup(getenv("REPORT_GROUP")),
				   *name = strchr(want, '=');

		*name++ = '\0';
		if (asprintf(&script, "#group option[value=\"%s\"]", want) < 0)
			die("out of memory");
		click(script);
		free(script);
		v = run_script("return Array.from(document.querySelectorAll('#flame .frame')).filter(function (e) {"
					   " return e.style.top === '21px'; }).map(function (e) { return e.getAttribute('data-name'); }).join('\\n')");
		check(strstr(v, name) != NULL, "grouped by %s, the first level shows %s (%.200s)", want, name, v);
		free(v);
		free(want);
	}

	free(session_call("DELETE", "", NULL));
	stop_driver();
	printf("%d failed\n", failures);
	return failures ? 1 : 0;
}
