// What a browser's User-Agent header says about the device: its kind (desktop, mobile,
// tablet, or a crawler), the browser and the operating system. Telemetry records these so
// that dashboards can split events without every client computing them.
//
// Heuristic by nature (the header is free text, and browsers increasingly freeze it): the
// rules below recognise the tokens current browsers and the major crawlers send. Known
// blind spot: iPadOS Safari in its default "desktop-class" mode sends exactly the macOS
// string, so it reads as a macOS desktop.
#pragma once

#include <string>
#include <string_view>

namespace celaest::core {

struct UserAgentInfo {
  std::string device_type;  // "desktop", "mobile", "tablet", "bot"; empty when unknown
  std::string browser;      // e.g. "Chrome", "Safari", "Samsung Internet", "Googlebot"; empty when unknown
  std::string os;           // e.g. "Windows", "macOS", "iOS", "Android", "Linux"; empty when unknown
};

UserAgentInfo parse_user_agent(std::string_view user_agent);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
