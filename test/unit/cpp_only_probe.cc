// Compiled by CTest (not linked into the test binary): includes every core header, so it
// fails when the build defines POSTGRES_H, and must compile cleanly when it does not.
#include "core/chat.hpp"
#include "core/codec.hpp"
#include "core/cost.hpp"
#include "core/duration.hpp"
#include "core/failure.hpp"
#include "core/headers.hpp"
#include "core/http_date.hpp"
#include "core/json_output.hpp"
#include "core/provider.hpp"
#include "core/retry_hint.hpp"
#include "core/retry_policy.hpp"
#include "core/template.hpp"
#include "core/weighted_pick.hpp"

int main() { return 0; }
