# pgscope top level.  Every target installs the Debian packages it needs
# first (scripts/deps.sh, quiet when they are present).  See README.md.
PREFIX    ?= /usr/local
CC        ?= cc
PG_CONFIG ?= pg_config
CFLAGS    ?= -O2 -g
WARN      := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE
PQ_INC    := $(shell $(PG_CONFIG) --includedir 2>/dev/null)
BIN       := build/pgscope
# a tracer is a folder of src/tracer: its BPF program (NAME.bpf.c), the header
# it shares with user space (NAME.h) and its command (NAME.c); src/tracer/common
# holds what the BPF programs share
TRACERS   := $(sort $(dir $(wildcard src/tracer/*/*.bpf.c)))
BPF_SRCS  := $(wildcard src/tracer/*/*.bpf.c)
SRCS      := $(wildcard src/*.c src/tracer/*.c src/agent/*.c) $(filter-out %.bpf.c,$(wildcard src/tracer/*/*.c))
OBJS      := $(patsubst src/%.c,build/%.o,$(SRCS)) build/assets.o
INCS      := -Isrc -Isrc/agent -Isrc/tracer -Isrc/tracer/common $(patsubst %/,-I%,$(TRACERS)) -Ibuild -I$(PQ_INC)
ARCH      := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -dumpmachine)
GEN_HDRS  := $(patsubst %.bpf.c,build/%.skel.h,$(notdir $(BPF_SRCS))) build/pg_offsets.h
ASSETS    := pgs_report_html=report/report.html pgs_report_css=report/report.css \
             pgs_report_js=report/report.js pgs_demo_schema=demo/schema.sql \
             pgs_demo_workload=demo/workload.sql

.PHONY: all deps bin extension install check roots demo bench clean

all: deps
	@$(MAKE) -s bin extension

deps:
	@scripts/deps.sh

bin: $(BIN) build/report_check build/pipeline build/otlp_sink build/sockcalls build/unit

build/report_check: tests/browser/report_check.c | build/.dir
	$(CC) $(CFLAGS) $(WARN) -o $@ $<

# a libpq client in pipeline mode, for the tracer's tests
build/pipeline: tests/clients/pipeline.c | build/.dir
	$(CC) $(CFLAGS) $(WARN) -I$(PQ_INC) -o $@ $< -lpq

# a stand-in OTLP/HTTP receiver, for the agent's tests
build/otlp_sink: tests/clients/otlp_sink.c | build/.dir
	$(CC) $(CFLAGS) $(WARN) -o $@ $<

# what an untraced process pays per socket call while a tracer is attached (bench/clients.sh)
build/sockcalls: bench/sockcalls.c | build/.dir
	$(CC) $(CFLAGS) $(WARN) -o $@ $<

# unit tests of the binary's pure functions: its objects but main.o, and a runner of our own
build/unit: tests/unit/unit.c $(filter-out build/main.o,$(OBJS))
	$(CC) $(CFLAGS) $(WARN) $(INCS) -o $@ $^ -lpq -lbpf -lelf -lz -lm -lpthread

extension:
	@$(MAKE) -s -C extension

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) -lpq -lbpf -lelf -lz -lm -lpthread

build/%.o: src/%.c $(wildcard src/*.h src/agent/*.h src/tracer/*.h src/tracer/*/*.h) $(GEN_HDRS) | build/.dir
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(INCS) -c -o $@ $<

# eBPF: CO-RE objects against the running kernel's BTF, loaded through skeletons
build/vmlinux.h: | build/.dir
	bpftool btf dump file /sys/kernel/btf/vmlinux format c >$@.tmp && mv $@.tmp $@

vpath %.bpf.c $(TRACERS)
build/%.bpf.o: %.bpf.c $(wildcard src/tracer/*/*.h) build/vmlinux.h
	clang -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Isrc/tracer/common -I$(dir $<) -Ibuild -I/usr/include/$(MULTIARCH) -c $< -o $@

build/%.skel.h: build/%.bpf.o
	bpftool gen skeleton $< name $*_bpf >$@.tmp && mv $@.tmp $@

# struct offsets from every installed postgresql-server-dev-N, the roots' (scripts/roots.sh) too
ROOT_STAMPS := $(wildcard /var/cache/pgscope/roots/*/.pgscope/stamp)
build/pg_offsets.h: scripts/gen-offsets.sh tools/pgoffsets.c $(ROOT_STAMPS) | build/.dir
	CC=$(CC) scripts/gen-offsets.sh $@

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

# the version matrix: stock PostgreSQL 17 and 18 in roots built (once, cached in
# /var/cache/pgscope/roots) from Debian's archive, the extension built in each
# (roots first, in a make of its own: the offsets table is generated from their headers too)
check:
	@$(MAKE) -s roots
	@$(MAKE) -s install
	@tests/run.sh

roots:
	@scripts/roots.sh 17 18
	@scripts/root-ext.sh 17
	@scripts/root-ext.sh 18

demo: install
	@$(BIN) demo --out demo-reports

bench:
	@$(MAKE) -s roots
	@$(MAKE) -s install
	@scripts/deps.sh --bench
	@bench/plprof.sh
	@bench/tracer.sh
	@bench/locks.sh
	@bench/clients.sh
	@bench/agent.sh
	@bench/plans.sh
	@bench/profile.sh
	@bench/majors.sh

clean:
	@$(MAKE) -s -C extension clean
	@rm -rf build extension/results extension/regression.diffs extension/regression.out
