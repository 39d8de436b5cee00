// The floor of test/bench/batch_bench.sh: N POSTs of the same body, all in flight at once
// through one libcurl multi handle (no database, no accounting), timed from the first
// curl_multi_add_handle to the last response. Prints the seconds; exit 1 unless every
// request got a 200. With BODY_FILE "-", N GETs instead (the health check's floor,
// test/bench/health_bench.sh).
//   bare_multi URL BODY_FILE|- N
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bare_multi URL BODY_FILE|- N\n");
    return 2;
  }
  const std::string url = argv[1];
  const bool get = std::string(argv[2]) == "-";
  std::stringstream buffer;
  if (!get) buffer << std::ifstream(argv[2]).rdbuf();
  const std::string body = buffer.str();
  const int n = std::stoi(argv[3]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(n));
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Authorization: Bearer sk-bench");
  headers = curl_slist_append(headers, "Expect:");
  std::vector<CURL*> easies;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    if (!get) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_multi_add_handle(multi, easy);
    easies.push_back(easy);
  }
  int running = 1;
  while (running > 0) {
    curl_multi_perform(multi, &running);
    if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  int ok = 0;
  for (CURL* easy : easies) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) ++ok;
    curl_multi_remove_handle(multi, easy);
    curl_easy_cleanup(easy);
  }
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);
  std::printf("%.3f %d\n", seconds, ok);
  return ok == n ? 0 : 1;
}
