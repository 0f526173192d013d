# pgscope top level.  Every target installs the Debian packages it needs
# first (scripts/deps.sh, quiet when they are present).  See README.md.
PREFIX    ?= /usr/local
CC        ?= cc
PG_CONFIG ?= pg_config
CFLAGS    ?= -O2 -g
WARN      := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE
PQ_INC    := $(shell $(PG_CONFIG) --includedir 2>/dev/null)
BIN       := build/pgscope
SRCS      := $(wildcard src/*.c)
OBJS      := $(patsubst src/%.c,build/%.o,$(SRCS)) build/assets.o
ASSETS    := pgs_report_html=report/report.html pgs_report_css=report/report.css \
             pgs_report_js=report/report.js pgs_demo_schema=demo/schema.sql \
             pgs_demo_workload=demo/workload.sql

.PHONY: all deps bin extension install check demo bench clean

all: deps
	@$(MAKE) -s bin extension

deps:
	@scripts/deps.sh

bin: $(BIN) build/report_check

build/report_check: tests/browser/report_check.c | build/.dir
	$(CC) $(CFLAGS) $(WARN) -o $@ $<

extension:
	@$(MAKE) -s -C extension

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) -lpq

build/%.o: src/%.c $(wildcard src/*.h) | build/.dir
	$(CC) $(CFLAGS) $(WARN) -I$(PQ_INC) -c -o $@ $<

build/embed: tools/embed.c | build/.dir
	$(CC) $(CFLAGS) $(WARN) -o $@ $<

build/assets.c: build/embed report/report.html report/report.css report/report.js demo/schema.sql demo/workload.sql
	build/embed $@ $(ASSETS)

build/assets.o: build/assets.c
	$(CC) $(CFLAGS) -c -o $@ $<

build/.dir:
	@mkdir -p build && touch $@

install: all
	@$(MAKE) -s -C extension install >/dev/null
	@install -D -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/pgscope

check: install
	@tests/run.sh

demo: install
	@$(BIN) demo --out demo-reports

bench: install
	@scripts/deps.sh --bench
	@bench/plprof.sh

clean:
	@$(MAKE) -s -C extension clean
	@rm -rf build extension/results extension/regression.diffs extension/regression.out
