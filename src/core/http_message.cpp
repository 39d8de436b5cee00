#include "core/http_message.hpp"

namespace celaest::core {

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

}  // namespace celaest::core
