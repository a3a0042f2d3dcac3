# ephemerad's own protocol test, included by the top-level Makefile.
# `make test-daemon` runs test/c/daemon_proto_test against the optimised
# daemon and then, sanitised itself, against the ASan/UBSan daemon.
DAEMON_TEST_SRC := test/c/daemon_proto_test.c

$(BUILD)/daemon_proto_test: $(DAEMON_TEST_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $(DAEMON_TEST_SRC)

$(BUILD)/asan/daemon_proto_test: $(DAEMON_TEST_SRC) $(HEADERS)
	@mkdir -p $(BUILD)/asan
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -o $@ $(DAEMON_TEST_SRC)

.PHONY: test-daemon
test-daemon: $(BUILD)/ephemerad $(BUILD)/daemon_proto_test $(BUILD)/asan/ephemerad $(BUILD)/asan/daemon_proto_test
	$(BUILD)/daemon_proto_test $(BUILD)/ephemerad
	$(BUILD)/asan/daemon_proto_test $(BUILD)/asan/ephemerad

TEST_TARGETS += test-daemon
