# pgscope top level.  Every target installs the Debian packages it needs
# first (scripts/deps.sh, quiet when they are present).  See README.md.
.PHONY: all deps install check demo bench clean

all: deps
	@$(MAKE) -s -C extension

deps:
	@scripts/deps.sh

install: all
	@$(MAKE) -s -C extension install >/dev/null

check: install
	@tests/run.sh

demo: install
	@scripts/demo.sh

bench: install
	@scripts/deps.sh --bench
	@bench/plprof.sh

clean:
	@$(MAKE) -s -C extension clean
	@rm -rf extension/results extension/regression.diffs extension/regression.out
