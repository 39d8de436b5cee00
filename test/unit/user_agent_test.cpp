// The user-agent parser on the strings current browsers and crawlers really send.
#include "core/user_agent.hpp"

#include <gtest/gtest.h>

using celaest::core::parse_user_agent;
using celaest::core::UserAgentInfo;

namespace {

void expect_ua(const char* ua, const char* device, const char* browser, const char* os) {
  UserAgentInfo info = parse_user_agent(ua);
  EXPECT_EQ(info.device_type, device) << ua;
  EXPECT_EQ(info.browser, browser) << ua;
  EXPECT_EQ(info.os, os) << ua;
}

}  // namespace

TEST(UserAgent, Chrome) {
  expect_ua("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "desktop", "Chrome", "Windows");
  expect_ua("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "desktop", "Chrome", "macOS");
  expect_ua("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "desktop", "Chrome", "Linux");
  expect_ua("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "desktop", "Chrome", "ChromeOS");
  // Chrome's reduced Android string ("K" for the model).
  expect_ua("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Mobile Safari/537.36",
            "mobile", "Chrome", "Android");
  expect_ua("Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "mobile", "Chrome", "iOS");
}

TEST(UserAgent, Safari) {
  expect_ua("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Safari/605.1.15",
            "desktop", "Safari", "macOS");
  expect_ua("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Mobile/15E148 Safari/604.1",
            "mobile", "Safari", "iOS");
  // iPad in mobile mode ("Request Mobile Website"); "Mobile/15E148" must not make it a phone.
  expect_ua("Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Mobile/15E148 Safari/604.1",
            "tablet", "Safari", "iOS");
}

TEST(UserAgent, Firefox) {
  expect_ua("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "desktop", "Firefox", "Windows");
  expect_ua("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "desktop", "Firefox", "Linux");
  expect_ua("Mozilla/5.0 (Android 15; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "mobile", "Firefox", "Android");
  expect_ua("Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0", "tablet", "Firefox", "Android");
  expect_ua("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
            "mobile", "Firefox", "iOS");
}

TEST(UserAgent, Edge) {
  expect_ua("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "desktop", "Edge", "Windows");
  expect_ua("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Mobile Safari/537.36 EdgA/131.0.0.0",
            "mobile", "Edge", "Android");
}

TEST(UserAgent, SamsungInternet) {
  expect_ua("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            "mobile", "Samsung Internet", "Android");
  // A Galaxy Tab: Android without "Mobile".
  expect_ua("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/26.0 Chrome/122.0.0.0 Safari/537.36",
            "tablet", "Samsung Internet", "Android");
}

TEST(UserAgent, AndroidWebView) {
  expect_ua("Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Version/4.0 Chrome/128.0.6613.127 Mobile Safari/537.36",
            "mobile", "Android WebView", "Android");
}

TEST(UserAgent, Crawlers) {
  expect_ua("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "Googlebot", "");
  expect_ua("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36",
            "bot", "Googlebot", "");
  // The smartphone crawler claims Android and Chrome: it is still a crawler.
  expect_ua("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "bot", "Googlebot", "");
  expect_ua("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", "Bingbot", "");
  expect_ua("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
            "+http://www.bing.com/bingbot.htm) Chrome/131.0.0.0 Safari/537.36",
            "bot", "Bingbot", "");
  // Unnamed automation is a bot without a browser name.
  expect_ua("curl/8.5.0", "bot", "", "");
}

TEST(UserAgent, PhoneModelsContainingBotAreNotCrawlers) {
  expect_ua("Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "mobile", "Chrome", "Android");
}

TEST(UserAgent, EmptyOrUnknown) {
  expect_ua("", "", "", "");
  expect_ua("   ", "", "", "");
  expect_ua("SomeInternalTool/1.2", "", "", "");
}
