// bare_post URL BODY_FILE N [HEADER...]
//
// The benchmark's baseline: the same JSON POST sent N times over one reused libcurl easy
// handle (so one kept-alive connection), with nothing of CELAEST in between. Whatever our
// client costs on top of this is overhead we added. Extra HEADERs ("Name: value") are sent
// too: the client of the Portkey gateway names its provider and upstream that way.
//
// Prints: bare_post: N calls, total X ms, Y us/call
// Exits non-zero if any call fails or answers outside 2xx: a failed call is fast and would
// flatter the baseline.
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace {

// Reads the response and throws it away, as a caller that only waits for it would.
size_t discard(char*, size_t size, size_t count, void* received) noexcept {
  *static_cast<size_t*>(received) += size * count;
  return size * count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s URL BODY_FILE N [HEADER...]\n", argv[0]);
    return 2;
  }
  const char* url = argv[1];
  std::ifstream file(argv[2], std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "bare_post: cannot read %s\n", argv[2]);
    return 2;
  }
  const std::string body((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const long calls = std::strtol(argv[3], nullptr, 10);
  if (calls <= 0) {
    std::fprintf(stderr, "bare_post: N must be a positive number\n");
    return 2;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    std::fprintf(stderr, "bare_post: curl_easy_init failed\n");
    return 2;
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Authorization: Bearer sk-bench");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip, as in our client
  for (int extra = 4; extra < argc; ++extra) headers = curl_slist_append(headers, argv[extra]);
  size_t received = 0;
  curl_easy_setopt(easy, CURLOPT_URL, url);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &discard);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, static_cast<void*>(&received));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);

  int status = 0;
  long connections = 0;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < calls; ++i) {
    const CURLcode result = curl_easy_perform(easy);
    long http_status = 0;
    long opened = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http_status);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &opened);
    connections += opened;
    if (result != CURLE_OK || http_status < 200 || http_status > 299) {
      if (result != CURLE_OK) {
        std::fprintf(stderr, "bare_post: call %ld failed: %s\n", i + 1, curl_easy_strerror(result));
      } else {
        std::fprintf(stderr, "bare_post: call %ld answered HTTP %ld\n", i + 1, http_status);
      }
      status = 1;
      break;
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;

  curl_easy_cleanup(easy);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  if (status != 0) return status;

  const double total_ms = std::chrono::duration<double, std::milli>(elapsed).count();
  std::printf("bare_post: %ld calls, total %.1f ms, %.1f us/call\n", calls, total_ms, total_ms * 1000.0 / calls);
  std::fprintf(stderr, "bare_post: %ld connection(s) opened, %zu response bytes\n", connections, received);
  return 0;
}
