#include "http/abort_probe.hpp"

#include "core/cpp_only.hpp"

namespace celaest::http {

bool AbortProbe::fired() noexcept {
  if (fired_ || !check_) return fired_;
  try {
    fired_ = check_();
  } catch (...) {
    fired_ = true;
    reason_ = "transfer aborted: the abort check threw an exception";
  }
  return fired_;
}

}  // namespace celaest::http
