#include "core/template.hpp"

#include <gtest/gtest.h>

namespace celaest::core {
namespace {

using nlohmann::json;

TEST(RenderTemplate, BothSpacingsAndVerbatimStrings) {
  auto r = render_template("Hello {{name}}, you are {{ role }}!", {{"name", "Ana"}, {"role", "admin <b>&"}});
  EXPECT_EQ(r.text, "Hello Ana, you are admin <b>&!");
  EXPECT_TRUE(r.missing.empty());
}

TEST(RenderTemplate, NonStringValuesAsJson) {
  json vars = {{"n", 42}, {"x", 1.5}, {"b", true}, {"o", {{"k", "v"}}}, {"a", {1, "two"}}, {"z", nullptr}};
  auto r = render_template("{{n}}|{{x}}|{{b}}|{{o}}|{{a}}|{{z}}|", vars);
  EXPECT_EQ(r.text, R"(42|1.5|true|{"k":"v"}|[1,"two"]||)");
  EXPECT_TRUE(r.missing.empty()) << "null is present, rendered empty";
}

TEST(RenderTemplate, MissingAreReportedOnceAndLeftVerbatim) {
  auto r = render_template("{{a}} {{ b }} {{a}} {{c}}", {{"c", "C"}, {"unused", "ignored"}});
  EXPECT_EQ(r.text, "{{a}} {{ b }} {{a}} C");
  EXPECT_EQ(r.missing, (std::vector<std::string>{"a", "b"}));
}

TEST(RenderTemplate, NameCharactersAndDottedPaths) {
  json vars = {{"user", {{"name", "Ana"}, {"address", {{"city", "Lima"}}}}}, {"first-name", "F"}, {"v_2", "V"},
               {"literal.dot", "L"}};
  auto r = render_template("{{user.name}} {{user.address.city}} {{first-name}} {{v_2}} {{literal.dot}}", vars);
  EXPECT_EQ(r.text, "Ana Lima F V L");
  auto missing = render_template("{{user.phone}} {{user.name.first}}", vars);
  EXPECT_EQ(missing.missing, (std::vector<std::string>{"user.phone", "user.name.first"}));
}

TEST(RenderTemplate, MalformedPlaceholdersStayVerbatim) {
  json vars = {{"x", "X"}};
  EXPECT_EQ(render_template("{{x", vars).text, "{{x");
  EXPECT_EQ(render_template("x}}", vars).text, "x}}");
  EXPECT_EQ(render_template("{{}}", vars).text, "{{}}");
  EXPECT_EQ(render_template("{{ }}", vars).text, "{{ }}");
  EXPECT_EQ(render_template("{{a b}}", vars).text, "{{a b}}");
  EXPECT_EQ(render_template("{{x!}}", vars).text, "{{x!}}");
  EXPECT_EQ(render_template("{x}", vars).text, "{x}");
  EXPECT_EQ(render_template("{{{x}}}", vars).text, "{X}");
  EXPECT_EQ(render_template("{{ {{x}}", vars).text, "{{ X");
  EXPECT_EQ(render_template("json: {\"a\": {\"b\": 1}}", vars).text, "json: {\"a\": {\"b\": 1}}");
  EXPECT_TRUE(render_template("{{a b}} {{x!}}", vars).missing.empty());
}

TEST(RenderTemplate, ValuesAreNotRenderedAgain) {
  auto r = render_template("{{a}}", {{"a", "{{b}}"}, {"b", "B"}});
  EXPECT_EQ(r.text, "{{b}}");
  EXPECT_TRUE(r.missing.empty());
}

TEST(RenderTemplate, EdgeInputs) {
  EXPECT_EQ(render_template("", {{"a", 1}}).text, "");
  EXPECT_EQ(render_template("plain", json()).text, "plain");
  auto r = render_template("{{a}}", json::array());
  EXPECT_EQ(r.missing, (std::vector<std::string>{"a"}));
  EXPECT_EQ(render_template("{{a}}{{a}}", {{"a", "\xC3\xA9"}}).text, "\xC3\xA9\xC3\xA9");
}

}  // namespace
}  // namespace celaest::core
