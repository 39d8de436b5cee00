// The AI providers CELAEST can call, in the order of the SQL enum ai_provider.
#pragma once

#include <optional>
#include <string_view>

namespace celaest::core {

// Order matters: it mirrors `CREATE TYPE ai_provider AS ENUM (...)`.
enum class Provider { Gemini, Groq, DeepSeek, OpenAI, Anthropic, Local };

// "gemini","groq","deepseek","openai","anthropic","local" (ASCII case-insensitive).
std::optional<Provider> provider_from_name(std::string_view name);

// The enum label, lowercase.
std::string_view provider_name(Provider provider);

// The documented public base URL (PROVIDERS.md §1), without a trailing slash.
std::string_view default_base_url(Provider provider);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
