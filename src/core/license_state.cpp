#include "core/license_state.hpp"

namespace celaest::core {

std::string_view license_state_code(LicenseStatus status, bool expired, bool trial_ended, bool was_trial) {
  switch (status) {
    case LicenseStatus::Cancelled:
      return "CANCELLED";
    case LicenseStatus::Expired:
      return was_trial ? "TRIAL_EXPIRED" : "EXPIRED";
    default:
      break;
  }
  // A date that has passed outranks a suspension: the license would not come back.
  if (expired) return status == LicenseStatus::Trial ? "TRIAL_EXPIRED" : "EXPIRED";
  if (status == LicenseStatus::Trial && trial_ended) return "TRIAL_EXPIRED";
  if (status == LicenseStatus::Suspended) return "SUSPENDED";
  return "VALID";
}

}  // namespace celaest::core
