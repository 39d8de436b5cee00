// Included last by every .cpp in src/http: this code runs inside a PostgreSQL backend but
// must never see PostgreSQL's headers (their macros clash with the C++ library, and an
// ereport() here would longjmp over C++ destructors). The glue in src/pg is the only place
// that may include both.
#pragma once

#ifdef POSTGRES_H
#error "src/http is pure C++: postgres.h must not be included in this translation unit"
#endif
