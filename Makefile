# CELAEST — PGXS build of celaest.so (C++17) and the versioned install script.
EXTENSION  = celaest
# The one version source: celaest.control's default_version (also compiled into version()).
EXTVERSION = $(shell sed -n "s/^default_version = '\\(.*\\)'/\\1/p" $(EXTENSION).control)

PG_CONFIG ?= pg_config

# Sources: the pure core, the HTTP client and the PostgreSQL glue.
CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
HTTP_SRCS = $(sort $(wildcard src/http/*.cpp))
PG_SRCS   = $(sort $(wildcard src/pg/*/*.cpp))
MODULE_big = celaest
OBJS = $(CORE_SRCS:.cpp=.o) $(HTTP_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# One SQL file per module, concatenated in name order into the current version's install
# script (pgvector's layout: sql/ holds the versioned scripts). Released versions' scripts
# and the upgrade scripts between them are checked in there and installed as they are.
SQL_MODULES = $(sort $(wildcard src/sql/*.sql))
DATA_built  = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA        = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql

# pg_regress (test/regress): the schedule names every test, in order; scripts/test.sh checks
# that every file in test/regress/sql is scheduled.
REGRESS = $(shell sed -n 's/^test: *//p' test/regress/schedule)
REGRESS_OPTS = --inputdir=test/regress --load-extension=pgcrypto --load-extension=uuid-ossp

# Server headers are -isystem so that their warnings are not ours.
PG_INCLUDEDIR_SERVER := $(shell $(PG_CONFIG) --includedir-server)
PG_CPPFLAGS = -Isrc -isystem $(PG_INCLUDEDIR_SERVER) -DCELAEST_VERSION='"$(EXTVERSION)"'
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

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_MODULES)
	cat $^ > $@

.PHONY: core-test
core-test:
	cmake -S . -B build/core -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build/core -j2
	ctest --test-dir build/core --output-on-failure
