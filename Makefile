# CELAEST — PGXS build of celaest.so (C++17) and the versioned install script.
EXTENSION  = celaest
EXTVERSION = 0.1.0

PG_CONFIG ?= pg_config

# Sources: the pure core, the HTTP client and the PostgreSQL glue.
CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
HTTP_SRCS = $(sort $(wildcard src/http/*.cpp))
PG_SRCS   = $(sort $(wildcard src/pg/*.cpp))
MODULE_big = celaest
OBJS = $(CORE_SRCS:.cpp=.o) $(HTTP_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# One SQL file per module, concatenated in name order into the install script.
SQL_MODULES = $(sort $(wildcard src/sql/*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql
EXTRA_CLEAN = $(EXTENSION)--$(EXTVERSION).sql

# pg_regress: the schedule names every test, in order.
REGRESS = $(shell sed -n 's/^test: *//p' test/regress_schedule)
REGRESS_OPTS = --load-extension=pgcrypto --load-extension=uuid-ossp

# Server headers are -isystem so that their warnings are not ours.
PG_INCLUDEDIR_SERVER := $(shell $(PG_CONFIG) --includedir-server)
PG_CPPFLAGS = -Isrc -isystem $(PG_INCLUDEDIR_SERVER)
WARNINGS = -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers
ifeq ($(CELAEST_WERROR),1)
WARNINGS += -Werror
endif
# -MMD -MP: each object lists the headers it was compiled from (*.d, included below), so a
# changed header rebuilds every object that saw it (a class layout must agree across objects).
PG_CXXFLAGS = -std=c++17 -fPIC -O2 -MMD -MP $(WARNINGS)
SHLIB_LINK = -lcurl -lstdc++

# No LLVM bitcode for C++ sources (needs clang and gains nothing here); set before PGXS.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
# PostgreSQL's CXXFLAGS carry C-only warnings; our flags above are the ones that count.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement -Wimplicit-fallthrough=3,$(CXXFLAGS))

-include $(OBJS:.o=.d)
EXTRA_CLEAN += $(OBJS:.o=.d)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_MODULES)
	cat $^ > $@

.PHONY: core-test
core-test:
	cmake -S . -B build/core -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build/core -j2
	ctest --test-dir build/core --output-on-failure
