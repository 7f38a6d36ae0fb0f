# qscale: autoscaler daemon for ClearML queues on AWS EC2.
#
#   make            build build/qscaled and build/qscalectl
#   make unit       run the cmocka unit tests
#   make test       install missing dependencies, then run every test
#   make asan       build and run the unit tests under ASan and UBSan
#   make demo       run qscale on a local simulated cloud
#   make bench      print speed and footprint figures
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX ?=	/usr/local
SBINDIR ?=	$(PREFIX)/sbin
SYSCONFDIR ?=	/etc
MANDIR ?=	$(PREFIX)/share/man
DATADIR ?=	$(PREFIX)/share/qscale
DESTDIR ?=

BUILD ?=	build
CC ?=		cc
PKG_CONFIG ?=	pkg-config
PKGS =		libevent libcurl libcjson libconfig openssl libxml-2.0

PKG_CFLAGS :=	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS :=	$(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS :=	$(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

OPT ?=		-O2 -g
SAN ?=
QS_CFLAGS =	-std=gnu11 -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		-Wmissing-prototypes -Wstrict-prototypes \
		-D_GNU_SOURCE -Icommon -Iworker -Isupervisor \
		$(PKG_CFLAGS) $(OPT) $(SAN) $(CFLAGS)
QS_LDFLAGS =	$(SAN) $(LDFLAGS)
LIBS =		$(PKG_LIBS) -lm

COMMON_SRC :=	$(wildcard common/*.c)
WORKER_SRC :=	$(wildcard worker/*.c)
SUP_SRC :=	$(filter-out supervisor/qscaled.c,$(wildcard supervisor/*.c))
CTL_SRC :=	$(wildcard ctl/*.c)
UNIT_SRC :=	$(wildcard tests/unit/test_*.c)

LIB_OBJ :=	$(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC) $(WORKER_SRC) $(SUP_SRC))
CTL_OBJ :=	$(patsubst %.c,$(BUILD)/obj/%.o,$(CTL_SRC))
UNIT_BIN :=	$(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC :=	$(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRC :=	$(wildcard tests/tools/*.c)
TOOL_BIN :=	$(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))

.PHONY: all unit test integration asan deps demo bench install clean format \
	check-deps

all: check-deps $(BUILD)/qscaled $(BUILD)/qscalectl $(TOOL_BIN)

check-deps:
	@$(PKG_CONFIG) --exists $(PKGS) || { \
	    echo "missing build dependencies: run 'make deps' (as root)" >&2; \
	    exit 1; }

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(QS_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libqscale.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/qscaled: $(BUILD)/obj/supervisor/qscaled.o $(BUILD)/libqscale.a
	$(CC) $(QS_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/qscalectl: $(CTL_OBJ) $(BUILD)/libqscale.a
	$(CC) $(QS_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libqscale.a
	@mkdir -p $(dir $@)
	$(CC) $(QS_LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)

# Small drivers the integration tests run (tests/tools/NAME.c).
$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(BUILD)/libqscale.a
	@mkdir -p $(dir $@)
	$(CC) $(QS_LDFLAGS) -o $@ $^ $(LIBS)

unit: all $(UNIT_BIN)
	@tests/run.sh unit $(BUILD)

integration: all $(UNIT_BIN)
	@tests/run.sh integration $(BUILD)

# Everything a user or CI runs: dependencies first, then unit and
# integration tests, ending with one summary line.
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@tests/run.sh all $(BUILD)

asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined" unit

deps:
	@contrib/deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/demo.sh $(BUILD)

bench: all
	@tests/bench/run.sh $(BUILD)

format:
	clang-format -i common/*.[ch] worker/*.[ch] supervisor/*.[ch] \
	    ctl/*.[ch] tests/unit/*.[ch]

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
