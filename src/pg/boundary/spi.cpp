#include "pg/boundary/spi.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/check_constraint_cache.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

#include <algorithm>
#include <unordered_map>

namespace celaest::pg {

namespace {

// Plans live for the backend; PostgreSQL's plan cache revalidates them after DDL.
std::unordered_map<std::string, SPIPlanPtr>& plan_cache() {
  static std::unordered_map<std::string, SPIPlanPtr> cache;
  return cache;
}

constexpr int kMaxParams = 32;

SPIPlanPtr prepared_plan(const char* sql, int param_count) {
  auto& cache = plan_cache();
  // Keyed by the statement's text (some statements are built once per backend, e.g. with
  // the schema that holds pgcrypto).
  std::string key(sql);
  if (auto found = cache.find(key); found != cache.end()) return found->second;
  SPIPlanPtr plan = pg_guarded([&] {
    Oid types[kMaxParams];
    for (int i = 0; i < param_count; ++i) types[i] = TEXTOID;
    SPIPlanPtr prepared = SPI_prepare(sql, param_count, types);
    if (prepared == nullptr)
      elog(ERROR, "celaest: SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
    SPI_keepplan(prepared);
    return prepared;
  });
  cache.emplace(std::move(key), plan);
  return plan;
}

// The statement about to run is celaest's: its CHECK constraints come from the session's
// compiled copies (check_constraint_cache.hpp), until it has started or failed to.
class OwnStatement {
 public:
  OwnStatement() noexcept { check_constraint_cache::arm_next_statement(); }
  ~OwnStatement() { check_constraint_cache::disarm(); }
  OwnStatement(const OwnStatement&) = delete;
  OwnStatement& operator=(const OwnStatement&) = delete;
};

// Typed plans are keyed by their text too: each call site passes the same types every time.
std::unordered_map<std::string, SPIPlanPtr>& binary_plan_cache() {
  static std::unordered_map<std::string, SPIPlanPtr> cache;
  return cache;
}

}  // namespace

SpiSession::SpiSession() : caller_context_(CurrentMemoryContext) {
  pg_guarded([] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "celaest: SPI_connect failed");
  });
  connected_ = true;
  // SPI_connect (and every SPI call after it) makes SPI's procedure context current, and
  // SPI_finish deletes it: a result Datum built there would be freed before PostgreSQL
  // reads it. Our code allocates in the caller's context instead.
  MemoryContextSwitchTo(static_cast<MemoryContext>(caller_context_));
}

SpiSession::~SpiSession() {
  if (!connected_) return;
  // A destructor cannot throw. SPI_finish fails only when SPI's stack is not what we left
  // (a bug); then the error is not dropped but handed to the entry point, which raises it
  // once the body has returned — unless another error is already on its way (that one wins,
  // and the transaction's abort cleans up SPI).
  try {
    const int status = pg_guarded([] { return SPI_finish(); });
    if (status != SPI_OK_FINISH)
      pg_guarded([status] { elog(ERROR, "celaest: SPI_finish failed: %s", SPI_result_code_string(status)); });
  } catch (const PgError& error) {
    detail::defer_error(error.data());
  } catch (...) {
    // Only an out-of-memory Error from copying the PostgreSQL error can land here; the
    // transaction is in trouble anyway and its abort cleans up SPI.
  }
}

QueryResult SpiSession::run(const char* sql, const std::vector<Text>& params, bool read_only) {
  const int param_count = static_cast<int>(params.size());
  if (param_count > kMaxParams) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: too many SPI parameters");
  SPIPlanPtr plan = prepared_plan(sql, param_count);

  Datum values[kMaxParams];
  char nulls[kMaxParams];
  pg_guarded([&] {
    for (int i = 0; i < param_count; ++i) {
      const Text& param = params[i];
      nulls[i] = param ? ' ' : 'n';
      values[i] = param ? PointerGetDatum(cstring_to_text_with_len(param->data(), (int)param->size())) : (Datum)0;
    }
  });
  return execute(plan, values, nulls, read_only);
}

QueryResult SpiSession::execute(void* prepared, const void* parameter_values, const char* nulls, bool read_only) {
  SPIPlanPtr plan = static_cast<SPIPlanPtr>(prepared);
  Datum* values = const_cast<Datum*>(static_cast<const Datum*>(parameter_values));
  int status;
  {
    OwnStatement own;
    status = pg_guarded([&] { return SPI_execute_plan(plan, values, nulls, read_only, 0); });
  }
  if (status < 0) throw Error(ERRCODE_INTERNAL_ERROR, std::string("celaest: SPI failed: ") + SPI_result_code_string(status));

  QueryResult result;
  result.processed = SPI_processed;
  SPITupleTable* table = SPI_tuptable;
  if (table != nullptr) {
    const int columns = table->tupdesc->natts;
    result.rows.reserve(SPI_processed);
    for (uint64 r = 0; r < SPI_processed; ++r) {
      Row row;
      row.reserve(columns);
      for (int c = 1; c <= columns; ++c) {
        char* cstring = pg_guarded([&] { return SPI_getvalue(table->vals[r], table->tupdesc, c); });
        if (cstring == nullptr) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(cstring));
          pfree(cstring);
        }
      }
      result.rows.push_back(std::move(row));
    }
    pg_guarded([&] { SPI_freetuptable(table); });
  }
  MemoryContextSwitchTo(static_cast<MemoryContext>(caller_context_));  // the SPI call made its procedure context current
  return result;
}

namespace {

// A plan prepared with typed parameters, with each parameter's input function.
struct TypedPlan {
  SPIPlanPtr plan = nullptr;
  std::vector<Oid> types;
  std::vector<FmgrInfo> input_functions;  // unused for text
  std::vector<Oid> io_params;
};

std::unordered_map<std::string, TypedPlan>& typed_plan_cache() {
  static std::unordered_map<std::string, TypedPlan> cache;
  return cache;
}

}  // namespace

QueryResult SpiSession::run_typed(const char* sql, const std::vector<unsigned int>& types,
                                  const std::vector<Text>& params, bool read_only) {
  const int param_count = static_cast<int>(params.size());
  if (param_count > kMaxParams || types.size() != params.size())
    throw Error(ERRCODE_INTERNAL_ERROR, "celaest: SPI parameters and their types do not match");
  auto& cache = typed_plan_cache();
  auto found = cache.find(sql);
  if (found == cache.end() || !std::equal(types.begin(), types.end(), found->second.types.begin(), found->second.types.end())) {
    TypedPlan typed;
    typed.types.assign(types.begin(), types.end());
    typed.input_functions.resize(types.size());
    typed.io_params.resize(types.size());
    typed.plan = pg_guarded([&] {
      for (size_t i = 0; i < typed.types.size(); ++i) {
        Oid input_function = InvalidOid;
        getTypeInputInfo(typed.types[i], &input_function, &typed.io_params[i]);
        // Kept for the backend's life, like the plan.
        fmgr_info_cxt(input_function, &typed.input_functions[i], TopMemoryContext);
      }
      SPIPlanPtr prepared = SPI_prepare(sql, param_count, typed.types.data());
      if (prepared == nullptr)
        elog(ERROR, "celaest: SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
      SPI_keepplan(prepared);
      return prepared;
    });
    found = cache.insert_or_assign(sql, std::move(typed)).first;
  }
  TypedPlan& typed = found->second;
  Datum values[kMaxParams];
  char nulls[kMaxParams];
  pg_guarded([&] {
    for (int i = 0; i < param_count; ++i) {
      const Text& param = params[i];
      nulls[i] = param ? ' ' : 'n';
      if (!param)
        values[i] = (Datum)0;
      else if (typed.types[i] == TEXTOID)
        values[i] = PointerGetDatum(cstring_to_text_with_len(param->data(), (int)param->size()));
      else
        values[i] = InputFunctionCall(&typed.input_functions[i], const_cast<char*>(param->c_str()), typed.io_params[i], -1);
    }
  });
  return execute(typed.plan, values, nulls, read_only);
}

std::optional<int64_t> SpiSession::int8_scalar(const char* sql, const std::vector<BinaryParam>& params) {
  const int param_count = static_cast<int>(params.size());
  if (param_count > kMaxParams) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: too many SPI parameters");
  auto& cache = binary_plan_cache();
  auto found = cache.find(sql);
  SPIPlanPtr plan = found != cache.end() ? found->second : nullptr;
  if (plan == nullptr) {
    plan = pg_guarded([&] {
      Oid types[kMaxParams];
      for (int i = 0; i < param_count; ++i) types[i] = params[i].type_oid;
      SPIPlanPtr prepared = SPI_prepare(sql, param_count, types);
      if (prepared == nullptr)
        elog(ERROR, "celaest: SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
      SPI_keepplan(prepared);
      return prepared;
    });
    cache.emplace(sql, plan);
  }
  Datum values[kMaxParams];
  char nulls[kMaxParams];
  for (int i = 0; i < param_count; ++i) {
    values[i] = static_cast<Datum>(params[i].datum);
    nulls[i] = params[i].is_null ? 'n' : ' ';
  }
  struct Answer {
    bool found;
    int64 value;
  };
  OwnStatement own;
  Answer answer = pg_guarded([&] {
    // In the calling statement's snapshot when there is one (READ COMMITTED still re-checks a
    // row that a concurrent transaction changed, as any UPDATE does): a second snapshot per
    // call means another ProcArrayLock round at every commit of every other backend.
    int status = ActiveSnapshotSet()
                     ? SPI_execute_snapshot(plan, values, nulls, GetActiveSnapshot(), InvalidSnapshot, false, true, 1)
                     : SPI_execute_plan(plan, values, nulls, false, 1);
    if (status < 0) elog(ERROR, "celaest: SPI failed: %s", SPI_result_code_string(status));
    Answer out{false, 0};
    if (SPI_tuptable != nullptr && SPI_processed > 0) {
      bool is_null = true;
      Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
      if (!is_null) {
        switch (SPI_gettypeid(SPI_tuptable->tupdesc, 1)) {
          case INT2OID: out = {true, DatumGetInt16(value)}; break;
          case INT4OID: out = {true, DatumGetInt32(value)}; break;
          default: out = {true, DatumGetInt64(value)}; break;
        }
      }
      SPI_freetuptable(SPI_tuptable);
    }
    return out;
  });
  MemoryContextSwitchTo(static_cast<MemoryContext>(caller_context_));
  if (!answer.found) return std::nullopt;
  return answer.value;
}

Text SpiSession::scalar(const char* sql, const std::vector<Text>& params, bool read_only) {
  QueryResult result = run(sql, params, read_only);
  if (result.rows.empty() || result.rows[0].empty()) return std::nullopt;
  return result.rows[0][0];
}

}  // namespace celaest::pg
