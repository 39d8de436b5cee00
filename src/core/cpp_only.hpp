// The purity guard, included LAST by every header in src/core and src/http (and by the .cpp
// files of src/http): both are pure C++ and must never see PostgreSQL's headers. Their macros
// (e.g. gettext's _, printf redirections, elog's longjmp-based ERROR) clash with the C++
// library, an ereport() there would longjmp over C++ destructors, and both are unit-tested
// without a server. The glue in src/pg, the only code that may include both, must therefore
// include core and http headers BEFORE postgres.h.
//
// No include guard on purpose: the check is re-evaluated at every inclusion, so a core or
// http header included after postgres.h fails even if another one came first.
#if defined(POSTGRES_H) || defined(PG_VERSION_NUM)
#define CELAEST_CORE_SAW_POSTGRES true
#else
#define CELAEST_CORE_SAW_POSTGRES false
#endif
static_assert(!CELAEST_CORE_SAW_POSTGRES,
              "src/core and src/http are pure C++: include their headers before postgres.h, never after");
#undef CELAEST_CORE_SAW_POSTGRES
