#include "core/license_state.hpp"

#include <gtest/gtest.h>

using celaest::core::license_state_code;
using celaest::core::LicenseStatus;

TEST(LicenseState, InForceAndInDateIsValid) {
  EXPECT_EQ(license_state_code(LicenseStatus::Active, false, false), "VALID");
  EXPECT_EQ(license_state_code(LicenseStatus::Trial, false, false), "VALID");
}

TEST(LicenseState, TrialEndIsAnExpiredTrial) {
  EXPECT_EQ(license_state_code(LicenseStatus::Trial, false, true), "TRIAL_EXPIRED");
  // trial_ends_at means nothing once the license is active.
  EXPECT_EQ(license_state_code(LicenseStatus::Active, false, true), "VALID");
}

TEST(LicenseState, ExpiryByDateOutranksSuspension) {
  EXPECT_EQ(license_state_code(LicenseStatus::Suspended, true, false), "EXPIRED");
  EXPECT_EQ(license_state_code(LicenseStatus::Suspended, false, false), "SUSPENDED");
  EXPECT_EQ(license_state_code(LicenseStatus::Trial, true, false), "TRIAL_EXPIRED");
  EXPECT_EQ(license_state_code(LicenseStatus::Active, true, false), "EXPIRED");
}

TEST(LicenseState, FinalStatusesNameThemselves) {
  EXPECT_EQ(license_state_code(LicenseStatus::Cancelled, true, true), "CANCELLED");
  EXPECT_EQ(license_state_code(LicenseStatus::Expired, false, false), "EXPIRED");
  EXPECT_EQ(license_state_code(LicenseStatus::Expired, false, false, true), "TRIAL_EXPIRED");
}
