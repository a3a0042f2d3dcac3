# Ephemera build.  `make` builds everything into build/; `make test` and
# `make demo` install what they need first (see scripts/deps.sh).
SHELL := /bin/bash
BUILD := build
CC ?= gcc
WARN := -Wall -Wextra -Werror
CFLAGS_COMMON := -std=gnu11 -D_GNU_SOURCE -Iinclude $(WARN) -g
CFLAGS_OPT := -O2
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SHIM_SRC := $(sort $(wildcard shim/*.c))
# The shim's code that shimmed processes run, in one block at the head of .text in shim/hot.ld's
# order (scripts/shim-hot-order.mjs makes it from gcov counts of real runs): an attached process's calls
# touch fewer of the code's pages and 64 KiB windows (ARCHITECTURE.md, "The attached paths' code in
# one place").  The script is the linker's own default with those lines put after .text.startup's.
SHIM_LDS := $(BUILD)/gen/shim.ld
SHIM_LAYOUT := -ffunction-sections -Wl,-T,$(SHIM_LDS)
DAEMON_SRC := $(sort $(wildcard daemon/*.c))
HEADERS := $(wildcard include/ephemera/*.h shim/*.h daemon/*.h)

# Every node:test run: a test without its own timeout is stopped after 15 minutes (the first run
# builds the function image inside a test), and the runner exits once the tests are done even if a
# leaked child or handle would keep a test file's process alive: nothing in `make test` can hang.
NODE_TEST := node --test --test-timeout=900000 --test-force-exit

TS_SRC := $(shell find src -name '*.ts' -o -name tsconfig.json) tsconfig.json tsconfig.base.json
NODE_STAMP := node_modules/.package-lock.json

# Test targets run in this order by `make test`; a makefile fragment may append to it
# (TEST_TARGETS += test-foo) and define the rule.
TEST_TARGETS := lint test-ts

.PHONY: all native cli deps lint test test-ts demo bench clean

all: native cli

native: $(BUILD)/libephemera.so $(BUILD)/ephemerad $(BUILD)/ephemera-run $(BUILD)/iobench $(BUILD)/microbench $(BUILD)/nsprims $(BUILD)/spawnloop $(BUILD)/stallfiles

# The CLI: TypeScript compiled by project references into build/js/, started by build/ephemera.
cli: $(BUILD)/ephemera $(BUILD)/.tsc-stamp

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(BUILD)/.tsc-stamp: $(TS_SRC) $(NODE_STAMP)
	@mkdir -p $(BUILD)
	node_modules/.bin/tsc -b
	@touch $@

# build/ephemera is the native launcher under the name of the CLI: it runs `run` itself and execs
# Node's CLI for every other command (launcher/main.c, main; no shell in between: 0.5 ms a run).
$(BUILD)/ephemera: $(BUILD)/ephemera-run
	install -m 755 $< $@.tmp
	mv -f $@.tmp $@

# `ephemera run` without Node.js (docs/ARCHITECTURE.md, "The native launcher"): the same run as
# src/cli/run.ts for the command lines it reads the same way, Node's CLI for the rest.  Static: no
# dynamic loader on a function's start (0.3-0.4 ms a run, measured).
LAUNCHER_SRC := $(sort $(wildcard launcher/*.c))
LAUNCHER_HDR := $(wildcard launcher/*.h) include/ephemera/elfphdr.h include/ephemera/gate.h include/ephemera/keeper.h include/ephemera/nslock.h include/ephemera/rescue.h include/ephemera/shm.h
$(BUILD)/ephemera-run: $(LAUNCHER_SRC) $(LAUNCHER_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -static -o $@.tmp $(LAUNCHER_SRC)
	mv -f $@.tmp $@

# The launcher under ASan/UBSan for src/cli/launcher-e2e.test.ts, beside the real one: it finds the
# daemon, the shim and the CLI next to itself.
$(BUILD)/ephemera-run-asan: $(LAUNCHER_SRC) $(LAUNCHER_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -o $@.tmp $(LAUNCHER_SRC)
	mv -f $@.tmp $@

# Native timed loops for `ephemera bench io`: no Node.js inside a measurement.
$(BUILD)/iobench: bench/native/iobench.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $<

# The building blocks of issue 15's design measured side by side (docs/ARCHITECTURE.md, "Design:
# metadata at memory speed"): run build/nsprims [--dir TMPFS_DIR].
$(BUILD)/nsprims: bench/native/nsprims.c include/ephemera/lock.h include/ephemera/proto.h include/ephemera/shm.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $< -lpthread

# gcc's driver's spawn (vfork, exec, a close-on-exec pipe), timed with and without the shim
# (docs/BENCHMARKS.md, "vfork served as vfork"): build/spawnloop N vfork|fork [MiB [FILE]].
$(BUILD)/spawnloop: bench/native/spawnloop.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $<

# --- memory harvesting (issue 3): the paper's micro benchmark for `ephemera bench fig7|fig8|fig9`.
$(BUILD)/microbench: bench/native/microbench.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $<
-include test/memory/memory.mk
# The cgroup v2 guest's writer attached before a stall (test/vm/cgroup-v2-init.sh).
$(BUILD)/stallfiles: test/vm/stallfiles.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $<
# --- end memory harvesting

# What this machine's libc answers for the shim's table of real calls, for every process whose
# libc is this one (same build-id): shim/gen/libcsyms.c, docs/ARCHITECTURE.md "The table of real
# calls from the build's libc (branch symtab)".  Another libc at run time is walked as before.
LIBCSYMS := $(BUILD)/gen/libcsyms.h
$(LIBCSYMS): shim/gen/libcsyms.c shim/symres.c shim/symres.h shim/sys.h shim/compiler.h include/ephemera/systable.h
	@mkdir -p $(BUILD)/gen
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -Ishim -o $(BUILD)/gen/libcsyms shim/gen/libcsyms.c shim/symres.c -ldl
	$(BUILD)/gen/libcsyms $@

# The default script of a -shared link (ld --verbose), changed in three places, each checked: shim/hot.ld
# after .text.startup's line, the .text.unlikely line dropped (hot.ld ends with it), .fini moved from
# after .text to after .init.  A linker whose script differs fails the build here.
UNLIKELY_LINE := ^ *\*(\.text\.unlikely \.text\.\*_unlikely \.text\.unlikely\.\*)$$
$(SHIM_LDS): shim/hot.ld
	@mkdir -p $(BUILD)/gen
	$(CC) -fPIC -shared -Wl,--verbose -o $@.so -x c /dev/null | sed -n '/^=====/,/^=====/p' | sed '1d;$$d' > $@.tmp
	rm -f $@.so
	grep -q '^ *\*(\.text\.startup \.text\.startup\.\*)$$' $@.tmp
	test $$(grep -c '$(UNLIKELY_LINE)' $@.tmp) = 1 && test $$(grep -c '^  \.fini  *:$$' $@.tmp) = 1
	test $$(grep -c '^    KEEP (\*(SORT_NONE(\.init)))$$' $@.tmp) = 1
	sed -i -e '/$(UNLIKELY_LINE)/d' -e '/^  \.fini  *:$$/,/^  }$$/d' \
	  -e '/^    KEEP (\*(SORT_NONE(\.init)))$$/{n;s/$$/\n  .fini : { KEEP (*(SORT_NONE(.fini))) }/}' \
	  -e '/^ *\*(\.text\.startup \.text\.startup\.\*)$$/r shim/hot.ld' $@.tmp
	test $$(grep -c 'SORT_NONE(\.fini)' $@.tmp) = 1 && test $$(grep -c '$(UNLIKELY_LINE)' $@.tmp) = 1
	mv -f $@.tmp $@

# Built aside and renamed into place: processes running with the old library keep its inode
# (rewriting a mapped .so in place crashes them).
$(BUILD)/libephemera.so: $(SHIM_SRC) $(HEADERS) shim/exports.map $(SHIM_LDS) $(LIBCSYMS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -I$(BUILD)/gen -fPIC -shared -fvisibility=hidden $(SHIM_LAYOUT) \
	  -Wl,--version-script=shim/exports.map -o $@.tmp $(SHIM_SRC) -ldl -lpthread
	mv -f $@.tmp $@

# Static, as the launcher: no dynamic loader on every `ephemera run`'s way to `ready`.
$(BUILD)/ephemerad: $(DAEMON_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -static -o $@ $(DAEMON_SRC) -lpthread

# ephemerad under ASan/UBSan, for the sanitised test runs (test/c/daemon_proto_test uses it).
$(BUILD)/asan/ephemerad: $(DAEMON_SRC) $(HEADERS)
	@mkdir -p $(BUILD)/asan
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -o $@ $(DAEMON_SRC) -lpthread

# Installs the system and npm packages; fast when all is present already.
deps:
	@scripts/deps.sh

-include test/tests.mk

test: deps
	@$(MAKE) --no-print-directory all
	@# Every suite runs even when an earlier one fails, so one failure does not hide another.
	@failed=; for t in $(TEST_TARGETS); do echo "== make $$t"; \
	  $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "== FAILED:$$failed"; exit 1; fi; echo "== all tests passed"

# typescript-eslint strictTypeChecked for the TypeScript, ESLint's recommended rules for the .mjs
# test harnesses (eslint.config.js); and the daemon's files must call each other in layers, never
# in a circle (scripts/c-layers.mjs).
lint: $(NODE_STAMP)
	node_modules/.bin/eslint src test
	node scripts/c-layers.mjs --self-test daemon

# Unit and integration tests of the TypeScript code, compiled beside it (*.test.js). Node 22+
# takes globs, not directories: `node --test build/js/` runs nothing and fails.
test-ts: cli native $(BUILD)/ephemera-run-asan
	$(NODE_TEST) 'build/js/**/*.test.js'

# The main job: the platform (ephemera up, one tenant's CPU-bound and I/O-heavy actions with
# and without sharing), then the paper's workloads in real containers (overlay vs tmpfs vs
# ephemera), quick sizes. It starts dockerd and builds the function image when they are missing.
demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/ephemera bench platform-demo
	$(BUILD)/ephemera bench quick

bench: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/ephemera bench io

clean:
	rm -rf $(BUILD)
