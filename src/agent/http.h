/*
 * http.h - the agent's scrape endpoint: a thread that answers GET /metrics
 * with what render writes, one connection at a time, each bounded in time
 * (a client that stalls is dropped after 5 s), on loopback unless told.
 */
#ifndef PGSCOPE_AGENT_HTTP_H
#define PGSCOPE_AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

typedef struct PgsHttp PgsHttp;
typedef void (*pgs_http_render) (PgsBuf *out, void *arg);

/* the default scrape address: loopback, a port of its own (not postgres_exporter's 9187) */
#define PGS_AGENT_DEFAULT_LISTEN "127.0.0.1:9864"

/*
 * Listens on addr ("HOST:PORT", "[V6]:PORT"; HOST may be a name) and serves
 * from a thread of its own; NULL with why (bad address, port in use).
 */
PgsHttp *pgs_http_start(const char *addr, pgs_http_render render, void *arg, char *why, size_t len);
void pgs_http_stop(PgsHttp *h);
/* whether addr has the HOST:PORT shape (a usage check, before anything starts) */
bool pgs_http_addr_ok(const char *addr);
/* scrapes served so far */
unsigned long pgs_http_requests(const PgsHttp *h);

#endif
