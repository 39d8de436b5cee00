#include "core/provider.hpp"

#include <array>

#include "core/text.hpp"

namespace celaest::core {
namespace {

struct ProviderInfo {
  Provider provider;
  std::string_view name;
  std::string_view base_url;
};

// One table so that name, enum and URL can never drift apart.
constexpr std::array<ProviderInfo, 6> kProviders{{
    {Provider::Gemini, "gemini", "https://generativelanguage.googleapis.com/v1beta"},
    {Provider::Groq, "groq", "https://api.groq.com/openai/v1"},
    {Provider::DeepSeek, "deepseek", "https://api.deepseek.com"},
    {Provider::OpenAI, "openai", "https://api.openai.com/v1"},
    {Provider::Anthropic, "anthropic", "https://api.anthropic.com"},
    {Provider::Local, "local", "http://localhost:11434"},
}};

const ProviderInfo& info(Provider provider) {
  for (const auto& entry : kProviders) {
    if (entry.provider == provider) return entry;
  }
  return kProviders[0];  // unreachable for valid enum values
}

}  // namespace

std::optional<Provider> provider_from_name(std::string_view name) {
  for (const auto& entry : kProviders) {
    if (iequals(entry.name, name)) return entry.provider;
  }
  return std::nullopt;
}

std::string_view provider_name(Provider provider) { return info(provider).name; }

std::string_view default_base_url(Provider provider) { return info(provider).base_url; }

}  // namespace celaest::core
