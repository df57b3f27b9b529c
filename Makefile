# gantry — one GNU Makefile, dependencies through pkg-config.
#   make                      build ./gantry and the example apps
#   make test                 unit (cmocka) + e2e tests; installs dependencies first
#   make demo                 the demo (deploy, rolling update under load, rollback)
#   make demo-docker, demo-fleet   the same with containers, on a 3-node Swarm
#   make layers               the include graph against src/LAYERS (scripts/layers.py)
#   make DEVELOPER=1          strict warnings as errors
#   make SANITIZE=address,undefined test
#   make FUZZ=1 fuzz          libFuzzer harnesses (clang)

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := libuv libfyaml jansson sqlite3 libcurl libsodium nettle libpq
O := build

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -fno-strict-aliasing -pthread
ifeq ($(DEVELOPER),1)
CFLAGS += -Werror -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes \
	-Wwrite-strings -Wformat=2 -Wno-format-nonliteral -Wno-unused-parameter
endif
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif
ifeq ($(FUZZ),1)
CC = clang
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -DGANTRY_FUZZ=1
LDFLAGS += -fsanitize=address,undefined
endif

DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm

# llhttp: Debian's node-llhttp ships the C sources; we compile them in strict mode.
LLHTTP_SRC_DIR ?= $(shell dpkg -L node-llhttp 2>/dev/null | sed -n 's|/llhttp\.c$$||p' | head -n1)
LLHTTP_INC_DIR ?= $(shell dpkg -L node-llhttp 2>/dev/null | sed -n 's|/llhttp\.h$$||p' | head -n1)
LLHTTP_OBJS := $(O)/llhttp/llhttp.o $(O)/llhttp/api.o $(O)/llhttp/http.o

ALL_CFLAGS = $(CFLAGS) -Isrc -I$(LLHTTP_INC_DIR) -DLLHTTP_STRICT_MODE=1 $(DEP_CFLAGS)

# src/shim/: small static programs of their own (not in libgantry)
SRCS := $(sort $(filter-out src/shim/%,$(wildcard src/*/*.c)))
OBJS := $(SRCS:%.c=$(O)/%.o)
MAIN_OBJ := $(O)/src/main.o
LIB := $(O)/libgantry.a

UNIT_SRCS := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(O)/%)
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(O)/fuzz/%)

.PHONY: all deps test unit e2e demo demo-docker demo-fleet fuzz fuzz-smoke clean layers
all: gantry gantry-secret-exec examples

deps:
	@./scripts/install-deps.sh

# the entrypoint of a container with secrets, installed beside gantry (src/shim/secret-exec.c);
# static and without sanitizer runtimes: it runs inside any image, FROM scratch too
gantry-secret-exec: src/shim/secret-exec.c
	$(CC) $(filter-out -fsanitize=%,$(CFLAGS)) -static -o $@ $<

gantry: $(MAIN_OBJ) $(LIB) $(LLHTTP_OBJS)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIB) $(LLHTTP_OBJS) $(DEP_LIBS) -pthread

$(LIB): $(OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(OBJS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -W% -Werror,$(CFLAGS)) -w -I$(LLHTTP_INC_DIR) -DLLHTTP_STRICT_MODE=1 -c -o $@ $<

examples: examples/hello/hello examples/hello/hello-static tests/e2e/helpers/loadgen tests/e2e/helpers/faultfs.so \
	tests/e2e/helpers/dockerc tests/e2e/helpers/swarmc
examples/hello/hello: examples/hello/hello.c
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -pthread
# the same, static, for a FROM scratch image (tests/e2e/lib/docker-lib.sh);
# no sanitizer: their runtimes are not there in a scratch image
examples/hello/hello-static: examples/hello/hello.c
	$(CC) $(filter-out -fsanitize=%,$(CFLAGS)) -static -o $@ $< -pthread
# test-only: the Docker Engine client driven from the shell (t6000)
tests/e2e/helpers/dockerc: tests/e2e/helpers/dockerc.c $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS) -pthread
# test-only: the Swarm client driven from the shell (t6100)
tests/e2e/helpers/swarmc: tests/e2e/helpers/swarmc.c $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS) -pthread
tests/e2e/helpers/loadgen: tests/e2e/helpers/loadgen.c
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -pthread
# test-only: the state store's writes fail on demand (t5400)
tests/e2e/helpers/faultfs.so: tests/e2e/helpers/faultfs.c
	$(CC) -O2 -g -Wall -shared -fPIC -o $@ $< -ldl

$(O)/tests/unit/%: tests/unit/%.c $(LIB) $(LLHTTP_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LLHTTP_OBJS) $(DEP_LIBS) \
		$(shell $(PKG_CONFIG) --libs cmocka) -pthread

unit: $(UNIT_BINS) layers
	@fail=0; for t in $(UNIT_BINS); do echo "# $$t"; $$t || fail=1; done; exit $$fail

# which module may include which: src/LAYERS; `scripts/layers.py [--dot]` prints the graph
layers:
	@python3 scripts/layers.py --check

e2e: gantry examples
	@./tests/e2e/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

demo: deps
	@$(MAKE) --no-print-directory all
	@./examples/demo.sh

# the same canary with the replicas as containers of a private Docker Engine (root, docker.io)
demo-docker: deps
	@$(MAKE) --no-print-directory all
	@GANTRY_DEMO_RUNTIME=docker ./examples/demo.sh

# the same canary on a real 3-node Docker Swarm started on this machine, a gantry proxy on every node (root)
demo-fleet: deps
	@$(MAKE) --no-print-directory all
	@GANTRY_DEMO_RUNTIME=fleet ./examples/demo.sh

$(O)/fuzz/%: fuzz/%.c $(LIB) $(LLHTTP_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(LIB) $(LLHTTP_OBJS) $(DEP_LIBS) -pthread

fuzz: $(FUZZ_BINS)

# a short run of every harness over its corpus (used by CI)
fuzz-smoke: fuzz
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(O)/fuzz/corpus-$$n; \
		echo "# $$n"; $$f -max_total_time=$${FUZZ_SECONDS:-30} -dict=fuzz/$${n#fuzz_}.dict \
		$(O)/fuzz/corpus-$$n fuzz/corpus/$${n#fuzz_} >$(O)/fuzz/$$n.log 2>&1; rc=$$?; \
		tail -n 3 $(O)/fuzz/$$n.log; [ $$rc -eq 0 ] || { grep -A12 "ERROR\|SUMMARY" $(O)/fuzz/$$n.log | head -n 40; \
		echo "fuzz-smoke: $$n failed (exit $$rc): the input is in ./crash-* or ./leak-*"; exit 1; }; done

clean:
	rm -rf $(O) gantry gantry-secret-exec examples/hello/hello examples/hello/hello-static tests/e2e/helpers/dockerc tests/e2e/helpers/swarmc

-include $(OBJS:.o=.d)
