// SPI from C++: every call goes through pg_guarded, values cross as text, plans are cached.
//
// Values are exchanged as text (parameters are cast in the SQL: `$1::uuid`). That keeps the
// glue free of Datum bookkeeping and costs little next to executing the statement; the
// statement's plan is prepared once per backend and kept (SPI_keepplan).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace celaest::pg {

using Text = std::optional<std::string>;  // nullopt = SQL NULL
using Row = std::vector<Text>;

struct QueryResult {
  std::vector<Row> rows;
  uint64_t processed = 0;

  bool empty() const { return rows.empty(); }
  const Text& at(size_t row, size_t column) const { return rows.at(row).at(column); }
};

// One SPI connection for the lifetime of the object.
class SpiSession {
 public:
  SpiSession();
  ~SpiSession();
  SpiSession(const SpiSession&) = delete;
  SpiSession& operator=(const SpiSession&) = delete;

  // Runs `sql` (all parameters typed text) through a cached prepared plan.
  QueryResult run(const char* sql, const std::vector<Text>& params = {}, bool read_only = false);
  QueryResult run(const std::string& sql, const std::vector<Text>& params = {}, bool read_only = false) {
    return run(sql.c_str(), params, read_only);
  }
  // Runs `sql` with parameters of the given types (type OIDs, one per parameter), each read
  // from its text by the type's input function here rather than by a cast in the statement:
  // for the hottest writes, where starting the executor on 29 casts is a measurable share.
  // The statement may keep its casts (`$2::uuid` of a uuid parameter is no cast at all).
  QueryResult run_typed(const char* sql, const std::vector<unsigned int>& types, const std::vector<Text>& params,
                        bool read_only = false);
  QueryResult run_typed(const std::string& sql, const std::vector<unsigned int>& types,
                        const std::vector<Text>& params, bool read_only = false) {
    return run_typed(sql.c_str(), types, params, read_only);
  }
  // A parameter passed as the server's own value (a Datum of the given type OID) rather than
  // text: for the hottest statements, where the text round trip is a measurable share.
  struct BinaryParam {
    unsigned int type_oid;
    uintptr_t datum;
    bool is_null = false;
  };
  // First column (int2/int4/int8) of the first row, or nullopt when there is no row. Runs in
  // the calling statement's snapshot (for a hot single-row UPDATE: no second snapshot).
  std::optional<int64_t> int8_scalar(const char* sql, const std::vector<BinaryParam>& params);
  // First column of the first row, or nullopt.
  Text scalar(const char* sql, const std::vector<Text>& params = {}, bool read_only = false);
  Text scalar(const std::string& sql, const std::vector<Text>& params = {}, bool read_only = false) {
    return scalar(sql.c_str(), params, read_only);
  }

 private:
  QueryResult execute(void* plan, const void* values, const char* nulls, bool read_only);

  void* caller_context_;  // MemoryContext; results the caller returns are allocated there
  bool connected_ = false;
};

}  // namespace celaest::pg
