// The client's names for the one HTTP vocabulary (core/http_message.hpp): a Request is the
// message plus its transfer limits, a Response the message plus how the transfer ended.
//
// Free of libcurl and PostgreSQL types so that the glue can include it and the client can
// be tested without a server.
#pragma once

#include <functional>

#include "core/http_message.hpp"

namespace celaest::http {

using core::Header;
using core::TransferLimits;
using core::TransportError;
using core::to_string;
using Request = core::TransferRequest;
using Response = core::TransferResponse;

// Polled from the calling thread while transfers run, at least every 20 ms (more often while
// data flows); true => abort now (TransportError::Aborted). Once it has returned true it is
// not called again within that perform/perform_many. Should not throw; if it does, the
// transfers are aborted.
using AbortCheck = std::function<bool()>;

}  // namespace celaest::http

#include "core/cpp_only.hpp"
