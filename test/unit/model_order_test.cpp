#include "core/model_order.hpp"

#include <gtest/gtest.h>

namespace core = celaest::core;
using core::Provider;

namespace {

core::CatalogModel model(const char* id, const char* name, Provider provider, bool active = true, bool text = true) {
  core::CatalogModel m;
  m.id = id;
  m.model_id = name;
  m.provider = provider;
  m.active = active;
  m.text_generation = text;
  return m;
}

// Catalogue order as the database gives it: default first, then by priority.
std::vector<core::CatalogModel> catalogue() {
  return {model("m-default", "gpt-4o-mini", Provider::OpenAI), model("m-claude", "claude-3-haiku", Provider::Anthropic),
          model("m-llama", "llama-3.1-8b", Provider::Groq), model("m-off", "gpt-3.5", Provider::OpenAI, false),
          model("m-embed", "text-embedding", Provider::OpenAI, true, false)};
}

core::ModelRequest request(std::optional<Provider> provider, std::optional<std::string> requested,
                           std::optional<std::string> preferred, bool json = false) {
  core::ModelRequest r;
  r.provider = provider;
  r.requested_model_id = std::move(requested);
  r.preferred_id = std::move(preferred);
  r.needs_json_mode = json;
  return r;
}

std::vector<std::string> names(const std::vector<core::CatalogModel>& models, const std::vector<size_t>& order) {
  std::vector<std::string> out;
  for (size_t i : order) out.push_back(models[i].model_id);
  return out;
}

}  // namespace

TEST(ModelOrder, CatalogueOrderOfActiveTextModels) {
  auto models = catalogue();
  EXPECT_EQ(names(models, core::candidate_order(models, request(std::nullopt, std::nullopt, std::nullopt))),
            (std::vector<std::string>{"gpt-4o-mini", "claude-3-haiku", "llama-3.1-8b"}));
}

TEST(ModelOrder, RequestedThenPreferredThenTheRest) {
  auto models = catalogue();
  EXPECT_EQ(names(models, core::candidate_order(models, request(std::nullopt, std::string("llama-3.1-8b"), std::string("m-claude")))),
            (std::vector<std::string>{"llama-3.1-8b", "claude-3-haiku", "gpt-4o-mini"}));
}

TEST(ModelOrder, ProviderFilters) {
  auto models = catalogue();
  EXPECT_EQ(names(models, core::candidate_order(models, request(Provider::Anthropic, std::nullopt, std::nullopt))),
            (std::vector<std::string>{"claude-3-haiku"}));
  EXPECT_TRUE(core::candidate_order(models, request(Provider::Gemini, std::nullopt, std::nullopt)).empty());
}

TEST(ModelOrder, NamedModelStates) {
  auto models = catalogue();
  EXPECT_EQ(core::named_model_state(models, std::nullopt, std::nullopt), core::NamedModel::NotNamed);
  EXPECT_EQ(core::named_model_state(models, std::string("gpt-4o-mini"), std::nullopt), core::NamedModel::Usable);
  EXPECT_EQ(core::named_model_state(models, std::string("gpt-3.5"), std::nullopt), core::NamedModel::Inactive);
  EXPECT_EQ(core::named_model_state(models, std::string("nope"), std::nullopt), core::NamedModel::Unknown);
  // Known, but not of that provider.
  EXPECT_EQ(core::named_model_state(models, std::string("gpt-4o-mini"), Provider::Groq), core::NamedModel::Unknown);
}

TEST(ModelOrder, JsonCallsFallBackOnlyToJsonModels) {
  auto models = catalogue();
  models[2].json_mode = true;  // llama declares json_mode; claude does not
  // The first choice is tried as it is; the fallback skips claude.
  EXPECT_EQ(names(models, core::candidate_order(models, request(std::nullopt, std::nullopt, std::nullopt, true))),
            (std::vector<std::string>{"gpt-4o-mini", "llama-3.1-8b"}));
  // Without JSON mode nothing is skipped.
  EXPECT_EQ(core::candidate_order(models, request(std::nullopt, std::nullopt, std::nullopt, false)).size(), 3u);
  // A requested model without json_mode is still tried first.
  EXPECT_EQ(names(models, core::candidate_order(models, request(std::nullopt, std::string("claude-3-haiku"), std::nullopt, true))),
            (std::vector<std::string>{"claude-3-haiku", "llama-3.1-8b"}));
}

TEST(ModelOrder, ANamedModelDoesNotFallBackUnlessAsked) {
  auto models = catalogue();
  auto named = request(std::nullopt, std::string("gpt-4o-mini"), std::nullopt);
  named.automatic_fallback = false;  // what falls_back_automatically() answers for a named model
  EXPECT_EQ(names(models, core::candidate_order(models, named)), (std::vector<std::string>{"gpt-4o-mini"}));
  // fallback_models: tried in the caller's order, skipping inactive ones, never twice.
  named.fallback_models = {"llama-3.1-8b", "gpt-3.5", "gpt-4o-mini", "claude-3-haiku"};
  EXPECT_EQ(names(models, core::candidate_order(models, named)),
            (std::vector<std::string>{"gpt-4o-mini", "llama-3.1-8b", "claude-3-haiku"}));
  // fallback: true on top of the list: the rest of the catalogue follows.
  named.fallback_models = {"llama-3.1-8b"};
  named.automatic_fallback = true;
  EXPECT_EQ(names(models, core::candidate_order(models, named)),
            (std::vector<std::string>{"gpt-4o-mini", "llama-3.1-8b", "claude-3-haiku"}));
}

TEST(ModelOrder, NoModelNamedFallsBackByDefaultButCanBeToldNot) {
  auto models = catalogue();
  auto unnamed = request(std::nullopt, std::nullopt, std::string("m-llama"));
  EXPECT_EQ(names(models, core::candidate_order(models, unnamed)),
            (std::vector<std::string>{"llama-3.1-8b", "gpt-4o-mini", "claude-3-haiku"}));
  unnamed.automatic_fallback = false;
  EXPECT_EQ(names(models, core::candidate_order(models, unnamed)), (std::vector<std::string>{"llama-3.1-8b"}));
}

TEST(ModelOrder, ExplicitFallbackModelsIgnoreJsonCapabilityButAutomaticOnesDoNot) {
  auto models = catalogue();
  auto json = request(std::nullopt, std::string("gpt-4o-mini"), std::nullopt, true);
  json.fallback_models = {"claude-3-haiku"};  // no json_mode, but the caller asked for it
  json.automatic_fallback = true;            // llama (no json_mode either) is not added
  EXPECT_EQ(names(models, core::candidate_order(models, json)),
            (std::vector<std::string>{"gpt-4o-mini", "claude-3-haiku"}));
}
