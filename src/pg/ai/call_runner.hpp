// Runs AI calls: the core's call plan (core/call_plan.hpp) driven with this backend's one
// HTTP client, over the key pool (routing, key health, shared rate windows) and with
// PostgreSQL's cancel served while it waits.
#pragma once

#include "core/call_plan.hpp"
#include "core/http_message.hpp"

#include "pg/ai/key_health.hpp"
#include "pg/ai/routing.hpp"

#include <cstddef>
#include <vector>

namespace celaest::http {
class Client;
}

namespace celaest::pg {

using core::AttemptRecord;
using core::CallInput;
using core::CallOutcome;

// Runs one call to the end (cancellable).
// `interrupted`, when given, receives what the call had done when an error (a cancel, a
// terminate) ended it: the requests already sent are paid for (README "The ledger").
CallOutcome run_call(Router& router, KeyHealth& health, CallInput input, CallOutcome* interrupted = nullptr);
// Runs many calls side by side, at most `parallel` transfers in flight.
std::vector<CallOutcome> run_calls(Router& router, KeyHealth& health, std::vector<CallInput> inputs, size_t parallel);

// The backend's one HTTP client, for AI calls and check_api_keys alike: created on first
// use and kept for the backend's life, so connections to providers are reused across calls.
http::Client& backend_client();
// The limits of every provider request: celaest.http_timeout_ms, http_connect_timeout_ms
// and max_response_size.
core::TransferLimits transfer_limits();

}  // namespace celaest::pg
