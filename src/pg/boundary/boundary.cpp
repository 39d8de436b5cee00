#include "pg/boundary/boundary.hpp"

#include <cstring>

namespace celaest::pg::detail {

namespace {
void copy_truncated(char* destination, size_t capacity, const char* source) noexcept {
  if (source == nullptr) source = "";
  size_t length = std::strlen(source);
  if (length >= capacity) length = capacity - 1;
  std::memcpy(destination, source, length);
  destination[length] = '\0';
}
}  // namespace

void capture(CapturedError* out, int sqlstate, const char* message, const char* detail, const char* hint) noexcept {
  out->sqlstate = sqlstate;
  copy_truncated(out->message, sizeof out->message, message);
  copy_truncated(out->detail, sizeof out->detail, detail);
  copy_truncated(out->hint, sizeof out->hint, hint);
}

void raise_captured(const CapturedError* error) {
  ereport(ERROR, (errcode(error->sqlstate), errmsg_internal("%s", error->message),
                  error->detail[0] ? errdetail_internal("%s", error->detail) : 0,
                  error->hint[0] ? errhint("%s", error->hint) : 0));
  pg_unreachable();
}

Error error_from_current_pg_error(MemoryContext caller_context) {
  MemoryContextSwitchTo(caller_context);
  ErrorData* data = CopyErrorData();
  FlushErrorState();
  Error error(data->sqlerrcode, data->message ? data->message : "", data->detail ? data->detail : "",
              data->hint ? data->hint : "");
  FreeErrorData(data);
  return error;
}

}  // namespace celaest::pg::detail
