// Included LAST by every header in src/core: the core is pure C++ and must never see
// PostgreSQL's headers. Their macros (e.g. gettext's _, printf redirections, elog's
// longjmp-based ERROR) clash with the C++ library, and the core is unit-tested without
// a server. The glue in src/pg must therefore include core headers BEFORE postgres.h.
//
// No include guard on purpose: the check is re-evaluated at every inclusion, so a core
// header included after postgres.h fails even if another core header came first.
#if defined(POSTGRES_H) || defined(PG_VERSION_NUM)
#define CELAEST_CORE_SAW_POSTGRES true
#else
#define CELAEST_CORE_SAW_POSTGRES false
#endif
static_assert(!CELAEST_CORE_SAW_POSTGRES,
              "src/core is pure C++: include core headers before postgres.h, never after");
#undef CELAEST_CORE_SAW_POSTGRES
