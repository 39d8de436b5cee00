// Proves the sanitizer build (CELAEST_SANITIZE) really catches what it is there for: each
// mode commits one error, and CTest expects the sanitizer's report. Without it, a build
// whose flags silently went missing would pass every test and prove nothing.
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "heap-overflow") {
    volatile char* buffer = new char[8];
    buffer[8] = 'x';  // one past the end
    delete[] buffer;
  } else if (mode == "signed-overflow") {
    volatile int big = INT_MAX;
    big = big + argc;  // argc >= 2 here
  } else if (mode == "leak") {
    char* lost = static_cast<char*>(std::malloc(64));
    std::memset(lost, 1, 64);
    lost = nullptr;
  }
  return 0;
}
