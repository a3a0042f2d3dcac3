# --- memory harvesting tests (issue 3): real cgroups, real ephemerad.  Included from the Makefile.
MEMTEST_SRC := $(wildcard test/memory/*.ts) test/memory/tsconfig.json

$(BUILD)/.memtest-stamp: $(MEMTEST_SRC) $(BUILD)/.tsc-stamp
	node_modules/.bin/tsc -b test/memory
	@touch $@

.PHONY: test-memory
test-memory: native cli $(BUILD)/test/ephemerad-faults $(BUILD)/.memtest-stamp
	$(NODE_TEST) --test-concurrency=1 'build/test-memory/**/*.test.js'

TEST_TARGETS += test-memory
