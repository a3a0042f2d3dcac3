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
DAEMON_SRC := $(sort $(wildcard daemon/*.c))
HEADERS := $(wildcard include/ephemera/*.h shim/*.h daemon/*.h)

.PHONY: all native cli deps test test-c test-ts demo bench clean

all: native cli

native: $(BUILD)/libephemera.so $(BUILD)/ephemerad

$(BUILD)/libephemera.so: $(SHIM_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -fPIC -shared -fvisibility=hidden \
	  -Wl,--version-script=shim/exports.map -o $@ $(SHIM_SRC) -ldl -lpthread

$(BUILD)/ephemerad: $(DAEMON_SRC) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) -o $@ $(DAEMON_SRC) -lpthread

clean:
	rm -rf $(BUILD)
