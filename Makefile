# switchyard -- top-level build.
#
#   make            build every binary into bin/
#   make run        install what is missing, build, start broker + VM-side
#                   actors with etc/switchyard.cfg and open a chat
#   make test       install what is missing, build, run every test twice:
#                   plain, then under AddressSanitizer + UBSan; then the
#                   fuzz targets for a bounded time on their corpus
#   make fuzz       build the libFuzzer targets (clang) into build/fuzz/
#   make bench      run the benchmarks (see BENCHMARKS.md)
#   make docs       regenerate the generated parts of docs/
#
# Variants are built in separate trees: build/release (bin/ holds its
# binaries), build/asan.  VARIANT=asan make ... selects the second.

VARIANT  ?= release
CC       ?= cc
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
                 -Wstrict-prototypes -Wno-missing-field-initializers -g \
                 -I. -MMD -MP
LDLIBS   := -lczmq -lzmq -lmsgpackc -llmdb -lsodium -lcurl -lm -lpthread

ifeq ($(VARIANT),asan)
  CFLAGS_V := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
  LDFLAGS_V := -fsanitize=address,undefined
  OUT      := build/asan
  BINDIR   := build/asan/bin
else
  CFLAGS_V := -O2
  LDFLAGS_V :=
  OUT      := build/release
  BINDIR   := bin
endif
CFLAGS  ?=
CFLAGS  += $(CFLAGS_COMMON) $(CFLAGS_V)
LDFLAGS += $(LDFLAGS_V)

# Programs: main source -> binary name.  A program whose main source is
# not (yet) in the tree is skipped, so a partial checkout still builds.
ALL_PROGRAMS := sy-broker:broker/main.c \
            syctl:tools/syctl.c \
            sy-schema:tools/schemadoc.c \
            sy-echo:actors/echo.c \
            sy-frontdoor:actors/frontdoor.c \
            sy-router:actors/router.c \
            sy-inference:actors/inference.c \
            sy-telegram:actors/telegram.c
PROGRAMS := $(foreach p,$(ALL_PROGRAMS),$(if $(wildcard $(word 2,$(subst :, ,$(p)))),$(p)))
prog_name = $(word 1,$(subst :, ,$(1)))
prog_src  = $(word 2,$(subst :, ,$(1)))
MAIN_SRCS := $(foreach p,$(PROGRAMS),$(call prog_src,$(p)))
BINS      := $(foreach p,$(PROGRAMS),$(BINDIR)/$(call prog_name,$(p)))

LIB_SRCS := $(filter-out $(MAIN_SRCS), \
              $(wildcard schemas/*.c common/*.c broker/*.c actors/*.c tools/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(OUT)/%.o)
LIB      := $(OUT)/libswitchyard.a

TEST_UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TEST_IT_SRCS   := $(wildcard tests/it/test_*.c)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_UNIT_SRCS) $(TEST_IT_SRCS), \
                       $(wildcard tests/unit/*.c tests/it/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(OUT)/%.o)
TEST_BINS := $(TEST_UNIT_SRCS:%.c=$(OUT)/%) $(TEST_IT_SRCS:%.c=$(OUT)/%)

.PHONY: all build tests deps run test test-plain test-asan fuzz fuzz-run \
        bench docs clean
.DEFAULT_GOAL := all

all: build
build: $(BINS)
tests: $(TEST_BINS)

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define PROGRAM_RULE
$(BINDIR)/$(call prog_name,$(1)): $(OUT)/$(basename $(call prog_src,$(1))).o $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call PROGRAM_RULE,$(p))))

$(OUT)/tests/%: $(OUT)/tests/%.o $(TEST_SUPPORT_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

-include $(shell find build -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- packages
deps:
	@sh tools/install-deps.sh

# ---------------------------------------------------------------- run
run: deps
	@$(MAKE) --no-print-directory build
	@sh tools/run.sh

# ---------------------------------------------------------------- tests
test: deps
	@$(MAKE) --no-print-directory VARIANT=release build tests
	@$(MAKE) --no-print-directory VARIANT=asan build tests
	@$(MAKE) --no-print-directory fuzz
	@sh tests/run.sh

test-plain:
	@$(MAKE) --no-print-directory VARIANT=release build tests
	@SY_VARIANTS=release SY_FUZZ=0 sh tests/run.sh

test-asan:
	@$(MAKE) --no-print-directory VARIANT=asan build tests
	@SY_VARIANTS=asan SY_FUZZ=0 sh tests/run.sh

# ---------------------------------------------------------------- fuzz
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
# The decoders under fuzz: the wire (schemas/), JSON (common/json.c) and
# the LLM backends' stream lines (actors/llm.c) and the Telegram API
# answers (actors/tgapi.c).
FUZZ_LIB_SRCS := $(wildcard schemas/*.c common/json.c actors/llm.c actors/tgapi.c)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1 -I. \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
fuzz: $(FUZZ_BINS)
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS) $(wildcard schemas/*.h common/json.h actors/llm.h actors/tgapi.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(filter-out $(MAIN_SRCS),$(FUZZ_LIB_SRCS)) -lmsgpackc -lsodium

fuzz-run: fuzz
	@SY_VARIANTS= SY_FUZZ=1 sh tests/run.sh

# ---------------------------------------------------------------- bench
bench:
	@sh tools/install-deps.sh bench
	@$(MAKE) --no-print-directory VARIANT=release build
	@sh bench/run.sh

# ---------------------------------------------------------------- docs
docs: build
	@sh tools/gen-docs.sh

clean:
	rm -rf build bin

# Benchmarks add their own build rules here.
-include bench/bench.mk
