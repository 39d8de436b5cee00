#include "core/user_agent.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace celaest::core {
namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool has(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Crawlers that name themselves, checked first: their strings also carry browser tokens
// (Googlebot's smartphone crawler claims Android and Chrome).
constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kNamedCrawlers{{
    {"googlebot", "Googlebot"},
    {"bingbot", "Bingbot"},
    {"applebot", "Applebot"},
    {"duckduckbot", "DuckDuckBot"},
    {"yandexbot", "YandexBot"},
    {"baiduspider", "Baiduspider"},
    {"facebookexternalhit", "Facebook"},
    {"gptbot", "GPTBot"},
    {"ahrefsbot", "AhrefsBot"},
}};

// Generic marks of automated clients. Not a bare "bot": phone models such as "CUBOT_X30"
// contain it; crawlers almost always write "…bot/1.0" or "…bot;" or link their info page.
constexpr std::array<std::string_view, 10> kCrawlerMarks{
    "bot/", "bot;", "crawler", "spider", "slurp", "+http", "headlesschrome", "curl/", "wget/", "python-requests"};

std::string crawler_name(const std::string& ua) {
  for (const auto& [token, name] : kNamedCrawlers)
    if (has(ua, token)) return std::string(name);
  return {};
}

bool is_crawler(const std::string& ua) {
  if (!crawler_name(ua).empty()) return true;
  return std::any_of(kCrawlerMarks.begin(), kCrawlerMarks.end(), [&](std::string_view m) { return has(ua, m); });
}

// Order matters: every Chromium-based browser also says "Chrome/" and "Safari/", and
// Chrome says "Safari/"; the most specific token wins.
std::string browser_of(const std::string& ua) {
  if (has(ua, "samsungbrowser/")) return "Samsung Internet";
  if (has(ua, "edg/") || has(ua, "edga/") || has(ua, "edgios/") || has(ua, "edge/")) return "Edge";
  if (has(ua, "opr/") || has(ua, "opera")) return "Opera";
  if (has(ua, "firefox/") || has(ua, "fxios/")) return "Firefox";
  if (has(ua, "crios/")) return "Chrome";
  // Android's WebView marks itself with "; wv)" (Lollipop and later).
  if (has(ua, "; wv)")) return "Android WebView";
  if (has(ua, "chrome/") || has(ua, "chromium/")) return "Chrome";
  if (has(ua, "safari/") && has(ua, "version/")) return "Safari";
  return {};
}

std::string os_of(const std::string& ua) {
  // iOS devices say "like Mac OS X": test them before macOS.
  if (has(ua, "iphone") || has(ua, "ipad") || has(ua, "ipod")) return "iOS";
  if (has(ua, "android")) return "Android";
  if (has(ua, "windows phone")) return "Windows Phone";
  if (has(ua, "windows")) return "Windows";
  if (has(ua, "cros ")) return "ChromeOS";
  if (has(ua, "mac os x") || has(ua, "macintosh")) return "macOS";
  if (has(ua, "linux") || has(ua, "x11")) return "Linux";
  return {};
}

std::string device_of(const std::string& ua) {
  if (has(ua, "ipad") || has(ua, "tablet") || has(ua, "kindle") || has(ua, "silk/")) return "tablet";
  if (has(ua, "iphone") || has(ua, "ipod") || has(ua, "mobi") || has(ua, "windows phone")) return "mobile";
  // Android phones say "Mobile"; Android tablets leave it out.
  if (has(ua, "android")) return "tablet";
  // Anything else that presents itself as a browser is a desktop.
  if (has(ua, "mozilla/") || has(ua, "opera")) return "desktop";
  return {};
}

}  // namespace

UserAgentInfo parse_user_agent(std::string_view user_agent) {
  UserAgentInfo info;
  const std::string ua = lowercase(user_agent);
  if (ua.find_first_not_of(" \t") == std::string::npos) return info;
  if (is_crawler(ua)) {
    info.device_type = "bot";
    info.browser = crawler_name(ua);
    return info;  // a crawler's OS and browser tokens are disguise, not a device
  }
  info.browser = browser_of(ua);
  info.os = os_of(ua);
  info.device_type = device_of(ua);
  return info;
}

}  // namespace celaest::core
