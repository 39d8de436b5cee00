// Reshaping a free-form message list for providers that take the system prompt apart and
// want strictly alternating user/assistant turns starting with user (Anthropic, Gemini).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/chat.hpp"

namespace celaest::core {

struct Turn {
  bool assistant = false;  // false: user
  std::string content;
};

struct AlternatingChat {
  std::string system;       // every system message, in order, blank-line separated
  std::vector<Turn> turns;  // non-empty, alternating, first is a user turn
};

// Stand-in for a user turn the provider requires but the caller did not give.
inline constexpr std::string_view kPlaceholderUserTurn = "(continue)";

// - system/developer messages go to `system`, wherever they appear;
// - assistant stays assistant; user, tool and unknown roles become user;
// - blank messages are dropped (providers reject empty text);
// - consecutive same-role turns are merged with a blank line;
// - no turns at all: the system text becomes the user turn (the provider needs one);
// - first turn assistant: a placeholder user turn is put before it;
// - a final assistant turn (a prefill) loses trailing whitespace, which Anthropic rejects.
AlternatingChat to_alternating(const std::vector<ChatMessage>& messages);

// True if any message mentions "json" (any case). OpenAI rejects JSON mode otherwise.
bool mentions_json(const std::vector<ChatMessage>& messages);

// What we add to a prompt to ask for JSON output.
// Lowercase "json" on purpose: it is the word OpenAI looks for.
inline constexpr std::string_view kJsonInstruction =
    "Answer in json: a single valid JSON value, with no prose and no markdown code fences.";

}  // namespace celaest::core

#include "core/cpp_only.hpp"
