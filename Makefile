# qscale: autoscaler daemon for ClearML queues on AWS EC2.
#
#   make            build build/qscaled and build/qscalectl
#   make unit       run the cmocka unit tests
#   make test       install missing dependencies, then run every test
#   make asan       the unit tests and the daemon under ASan and UBSan
#   make soak       the long regression runs (chaos, hostile endpoints)
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
		-D_GNU_SOURCE -Icommon -Iworker -Isupervisor -I$(BUILD)/gen \
		$(PKG_CFLAGS) $(OPT) $(SAN) $(CFLAGS)
QS_LDFLAGS =	$(SAN) $(LDFLAGS)
LIBS =		$(PKG_LIBS) -lm

COMMON_SRC :=	$(wildcard common/*.c)
WORKER_SRC :=	$(wildcard worker/*.c)
SUP_SRC :=	$(filter-out supervisor/qscaled.c,$(wildcard supervisor/*.c))
CTL_SRC :=	$(wildcard ctl/*.c)
UNIT_SRC :=	$(wildcard tests/unit/test_*.c)
TOOL_SRC :=	$(wildcard tests/tools/*.c)

LIB_OBJ :=	$(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC) $(WORKER_SRC) $(SUP_SRC))
CTL_OBJ :=	$(patsubst %.c,$(BUILD)/obj/%.o,$(CTL_SRC))
UNIT_BIN :=	$(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_BIN :=	$(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))
FUZZ_SRC :=	$(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN :=	$(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?=	30

.PHONY: all unit test integration asan deps demo bench install clean format \
	check-deps fuzz fuzz-bins test-bins soak
# Objects of the test and tool binaries stay: make would otherwise remove
# them after the summary line, as intermediate files.
.SECONDARY:

all: check-deps $(BUILD)/qscaled $(BUILD)/qscalectl $(TOOL_BIN)

check-deps:
	@$(PKG_CONFIG) --exists $(PKGS) || { \
	    echo "missing build dependencies: run 'make deps' (as root)" >&2; \
	    exit 1; }

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(QS_CFLAGS) -MMD -MP -c -o $@ $<

# The dashboard is compiled in: the binary serves it with no file on disk.
DASH_SRC :=	supervisor/dashboard.html supervisor/dashboard.js \
		supervisor/dashboard.css

$(BUILD)/gen/dashboard_assets.h: $(DASH_SRC) contrib/embed.sh
	@mkdir -p $(dir $@)
	contrib/embed.sh $(DASH_SRC) >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/supervisor/status.o: $(BUILD)/gen/dashboard_assets.h

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

# Small drivers the integration tests run: tests/tools/NAME.c
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

# The unit tests, then the daemon itself on the simulated cloud, every
# process leak-checked (tests/sanitize).
asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined" all test-bins
	@tests/run.sh asan $(BUILD)/asan

test-bins: $(UNIT_BIN)

# Minutes long: kill -9 chaos and hostile endpoints (tests/soak).
soak: all
	@tests/run.sh soak $(BUILD)

# libFuzzer harnesses of every parser of untrusted input (clang):
# make fuzz [FUZZ_SECONDS=30] runs each for that long.
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/libqscale.a
	@mkdir -p $(dir $@)
	$(CC) $(QS_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-bins: $(FUZZ_BIN)

fuzz:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzzing CC=clang \
	    OPT="-O1 -g" SAN="-fsanitize=address,undefined,fuzzer-no-link \
	    -fno-omit-frame-pointer" fuzz-bins
	@tests/fuzz/run.sh $(BUILD)/fuzzing $(FUZZ_SECONDS)

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

# make install [PREFIX=/usr/local] [DESTDIR=]: the programs, the example
# configuration (never a qscale.conf: that one is yours), the manuals and
# the files to run qscale as a service.  The files name /usr/local and
# /etc/qscale; installed, they name the directories given here.
INSTALL ?=	install
MAN8 :=		man/qscaled.8 man/qscalectl.8
MAN5 :=		man/qscale.conf.5
CONTRIB_EXEC :=	contrib/qscaled.init
CONTRIB_DATA :=	contrib/qscaled.service contrib/qscaled.default \
		contrib/qscale.logrotate contrib/grafana-dashboard.json \
		contrib/iam-policy.json
SUBST =		sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' \
		    -e 's|/usr/local/share/qscale|$(DATADIR)|g' \
		    -e 's|/etc/qscale/|$(SYSCONFDIR)/qscale/|g'

.PHONY: uninstall

install: $(BUILD)/qscaled $(BUILD)/qscalectl etc/qscale.conf.example
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SBINDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/qscale $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR)
	$(INSTALL) -m 0755 $(BUILD)/qscaled $(BUILD)/qscalectl \
	    $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0644 etc/qscale.conf.example \
	    $(DESTDIR)$(SYSCONFDIR)/qscale/qscale.conf.example
	@set -e; mkdir -p $(BUILD)/install; \
	install_subst() { mode=$$1 dir=$$2; shift 2; for f in "$$@"; do \
		$(SUBST) "$$f" >$(BUILD)/install/$${f##*/}; \
		echo "$(INSTALL) -m $$mode $$f $$dir/"; \
		$(INSTALL) -m $$mode $(BUILD)/install/$${f##*/} "$$dir/"; \
	    done; }; \
	install_subst 0644 $(DESTDIR)$(MANDIR)/man8 $(MAN8); \
	install_subst 0644 $(DESTDIR)$(MANDIR)/man5 $(MAN5); \
	install_subst 0755 $(DESTDIR)$(DATADIR) $(CONTRIB_EXEC); \
	install_subst 0644 $(DESTDIR)$(DATADIR) $(CONTRIB_DATA)
	@[ -e $(DESTDIR)$(SYSCONFDIR)/qscale/qscale.conf ] || echo "next:" \
	    "cp $(SYSCONFDIR)/qscale/qscale.conf.example" \
	    "$(SYSCONFDIR)/qscale/qscale.conf; chmod 600 it and edit it;" \
	    "then qscaled -n"

# Removes what install put, and the directories it made if they are
# empty: a qscale.conf stays, and with it $(SYSCONFDIR)/qscale.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/qscaled $(DESTDIR)$(SBINDIR)/qscalectl \
	    $(DESTDIR)$(SYSCONFDIR)/qscale/qscale.conf.example \
	    $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
	    $(addprefix $(DESTDIR)$(DATADIR)/,$(notdir $(CONTRIB_EXEC) \
	    $(CONTRIB_DATA)))
	@for d in $(DESTDIR)$(DATADIR) $(DESTDIR)$(SYSCONFDIR)/qscale; do \
	    [ ! -d "$$d" ] || rmdir "$$d" 2>/dev/null || \
	    echo "kept $$d: not empty"; done

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
