#include "core/messages.hpp"

#include "core/text.hpp"

namespace celaest::core {
namespace {

void append_paragraph(std::string& to, std::string_view text) {
  if (!to.empty()) to += "\n\n";
  to += text;
}

}  // namespace

AlternatingChat to_alternating(const std::vector<ChatMessage>& messages) {
  AlternatingChat out;
  for (const auto& m : messages) {
    if (is_blank(m.content)) continue;
    if (iequals(m.role, "system") || iequals(m.role, "developer")) {
      append_paragraph(out.system, m.content);
      continue;
    }
    const bool assistant = iequals(m.role, "assistant");
    if (!out.turns.empty() && out.turns.back().assistant == assistant) {
      append_paragraph(out.turns.back().content, m.content);
    } else {
      out.turns.push_back(Turn{assistant, m.content});
    }
  }
  if (out.turns.empty()) {
    out.turns.push_back(Turn{false, out.system.empty() ? std::string(kPlaceholderUserTurn) : out.system});
    out.system.clear();
  }
  if (out.turns.front().assistant) {
    out.turns.insert(out.turns.begin(), Turn{false, std::string(kPlaceholderUserTurn)});
  }
  if (out.turns.back().assistant) {
    out.turns.back().content = std::string(rtrim(out.turns.back().content));
  }
  return out;
}

bool mentions_json(const std::vector<ChatMessage>& messages) {
  for (const auto& m : messages) {
    if (icontains(m.content, "json")) return true;
  }
  return false;
}

}  // namespace celaest::core
