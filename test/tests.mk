# Test programs and targets for the file-system suites (owner: tests).  Included by the top-level
# Makefile; `make test` runs the targets in TEST_TARGETS in order.
#
#   make test-c       C unit tests (test/c/*_test.c), plain
#   make test-c-asan  the same under ASan/UBSan, plus the testers' own self-checks sanitised
#   make test-fs      node --test test/fs/*.test.mjs: differential tests, real programs, exports,
#                     threads (needs the shim, the daemon and the CLI built)
#   make test-unit    the pure unit tests only (C and TypeScript), in well under a minute; not
#                     part of `make test`, whose test-c, test-c-asan and test-ts run them too
#   make test-build   only build the test programs
#   make soak         (not in make test) the OOM guard's ASan runs: daemon_proto_test 50 times
#                     and the guard workload of test/memory/guard.test.ts 50 times; the difftest
#                     soak; the SQLite WAL soak (test/fs/wal_soak.sh)
TEST_BUILD := $(BUILD)/test
ASAN_BUILD := $(BUILD)/asan

TEST_PROGS := $(TEST_BUILD)/difftest $(TEST_BUILD)/mt_hammer $(TEST_BUILD)/static_reader \
              $(ASAN_BUILD)/difftest $(ASAN_BUILD)/mt_hammer $(ASAN_BUILD)/ephemerad \
              $(TEST_BUILD)/libephemera-faults.so $(TEST_BUILD)/ephemerad-faults $(ASAN_BUILD)/ephemerad-faults

TEST_TARGETS := test-c test-c-asan $(TEST_TARGETS) test-fs

.PHONY: test-build test-c test-c-asan test-fs test-unit soak

test-build: $(TEST_PROGS)

$(TEST_BUILD)/difftest: test/c/difftest.c
	@mkdir -p $(TEST_BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $<

$(ASAN_BUILD)/difftest: test/c/difftest.c
	@mkdir -p $(ASAN_BUILD)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -o $@ $<

$(TEST_BUILD)/mt_hammer: test/c/mt_hammer.c
	@mkdir -p $(TEST_BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $< -lpthread

$(ASAN_BUILD)/mt_hammer: test/c/mt_hammer.c
	@mkdir -p $(ASAN_BUILD)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -o $@ $< -lpthread

# Static on purpose: it cannot load the shim, so in-memory files must be materialised for it.
$(TEST_BUILD)/static_reader: test/c/static_reader.c
	@mkdir -p $(TEST_BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -static -o $@ $<

# The shim as tests build it: the same sources with -DEPH_FAULTS, so that EPHEMERA_FAULTS can put a
# fault in front of an entry of its syscall table (shim/sys.c).  Never installed; the production
# library above has no fault code at all.
$(TEST_BUILD)/libephemera-faults.so: $(SHIM_SRC) $(HEADERS) shim/exports.map $(SHIM_LDS) $(LIBCSYMS)
	@mkdir -p $(TEST_BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -I$(BUILD)/gen -DEPH_FAULTS -fPIC -shared -fvisibility=hidden $(SHIM_LAYOUT) \
	  -Wl,--version-script=shim/exports.map -o $@.tmp $(SHIM_SRC) -ldl -lpthread
	mv -f $@.tmp $@

# The daemon as tests build it: -DEPH_FAULTS, so that EPHEMERAD_FAULTS can put a fault in front of an
# entry of the table of its eviction and writeback calls (daemon/sys.h).  Plain and sanitised.
$(TEST_BUILD)/ephemerad-faults: $(DAEMON_SRC) $(HEADERS)
	@mkdir -p $(TEST_BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -DEPH_FAULTS -o $@ $(DAEMON_SRC) -lpthread

$(ASAN_BUILD)/ephemerad-faults: $(DAEMON_SRC) $(HEADERS)
	@mkdir -p $(ASAN_BUILD)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -DEPH_FAULTS -o $@ $(DAEMON_SRC) -lpthread

TEST_C_ENV = CC="$(CC)" CFLAGS_COMMON="$(CFLAGS_COMMON)" SAN="$(SAN)"

# cli: daemon_proto_test runs `ephemera watchdog` beside its memory cgroup.
test-c: native cli $(TEST_PROGS)
	@$(TEST_C_ENV) test/c/run_c_tests.sh plain

test-c-asan: native cli $(TEST_PROGS)
	@$(TEST_C_ENV) test/c/run_c_tests.sh asan

# The OOM guard under ASan (issue 9): the ASan daemon cannot lock its working set, so these runs
# lean on the watchdog.  About 9 minutes (measured on a busy 2-core machine).  Then the
# differential tester's soak: 10 million operations compared with tmpfs under CPU contention,
# bounded by SOAK_MINUTES (45 by default; SOAK_OPS, SOAK_SEED, SOAK_HOGS: test/README.md).
soak: all $(TEST_PROGS) $(BUILD)/.memtest-stamp
	@$(MAKE) --no-print-directory test-c-asan
	test/c/proto_soak.sh 50 120 $(ASAN_BUILD)/daemon_proto_test $(CURDIR)/$(ASAN_BUILD)/ephemerad
	GUARD_SOAK_ASAN=1 GUARD_SOAK_RUNS=50 node --test --test-concurrency=1 $(BUILD)/test-memory/guard.test.js
	node test/fs/difftest_soak.mjs
	test/fs/wal_soak.sh

test-fs: all $(TEST_PROGS)
	$(NODE_TEST) --test-reporter=spec test/fs/*.test.mjs

# --- The unit tier.  A test joins it by carrying the line `// test-tier: unit` (a *.test.ts under
# src/, or a test/c/*_test.c): a test of a pure core, with no daemon, shim, cgroup, Docker or child
# process (fakes at the seams are fine) that takes well under a second.  New components mark their
# cores' tests the same way; nothing here needs to change for them.  test/README.md lists the tiers.
UNIT_TS := $(shell grep -rlx --include='*.test.ts' '// test-tier: unit' src 2>/dev/null | sort)

test-unit: cli $(LIBCSYMS)
	$(NODE_TEST) $(patsubst src/%.ts,$(BUILD)/js/%.js,$(UNIT_TS))
	@$(TEST_C_ENV) test/c/run_c_tests.sh plain unit
	@$(TEST_C_ENV) test/c/run_c_tests.sh asan unit
