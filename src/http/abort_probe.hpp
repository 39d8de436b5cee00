// The one place that calls the caller's AbortCheck.
//
// Both the progress callback (inside libcurl, so it must not throw) and the poll loop ask
// it; once it has said "abort" it keeps saying so, so every transfer of a perform_many
// stops for the same reason and the caller's check is not consulted again.
#pragma once

#include "http/http_types.hpp"

namespace celaest::http {

class AbortProbe {
 public:
  explicit AbortProbe(const AbortCheck& check) noexcept : check_(check) {}
  AbortProbe(const AbortProbe&) = delete;
  AbortProbe& operator=(const AbortProbe&) = delete;

  // True once the check has returned true (or thrown: a check that cannot answer must not
  // leave a backend stuck in a transfer nobody can cancel).
  bool fired() noexcept;

  // Why it fired, for error_text.
  const char* reason() const noexcept { return reason_; }

 private:
  const AbortCheck& check_;
  bool fired_ = false;
  const char* reason_ = "transfer aborted by the abort check";
};

}  // namespace celaest::http

#include "core/cpp_only.hpp"
