#include "http/http_types.hpp"

#include "http/pure_cpp.hpp"

namespace celaest::http {

const char* to_string(TransportError error) noexcept {
  switch (error) {
    case TransportError::None: return "none";
    case TransportError::Timeout: return "timeout";
    case TransportError::Connect: return "connect";
    case TransportError::TooLarge: return "too large";
    case TransportError::Aborted: return "aborted";
    case TransportError::Other: return "other";
  }
  return "other";
}

}  // namespace celaest::http
