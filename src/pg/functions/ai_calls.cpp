// run_prompt() and ai_chat(): one synchronous AI call each, with routing, retries, fallback,
// license accounting and a processed_tasks row (API.md "AI calls").
#include <nlohmann/json.hpp>

#include "core/call_options.hpp"

#include "pg/ai/call_runner.hpp"
#include "pg/identity/caller.hpp"
#include "pg/ai/prompt_source.hpp"
#include "pg/licensing/quota_gate.hpp"
#include "pg/ai/task_record.hpp"
#include "pg/ledger/counters.hpp"
#include "pg/ledger/records.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/settings.hpp"

#include <chrono>

namespace celaest::pg {

namespace {

nlohmann::json parse_json_argument(const std::optional<std::string>& text, const char* /*argument*/,
                                   nlohmann::json fallback) {
  if (!text) return fallback;
  return nlohmann::json::parse(*text);  // jsonb output is always valid JSON
}

core::CallOptions parse_options(const nlohmann::json& options) {
  try {
    return core::parse_call_options(options);
  } catch (const core::InvalidOption& invalid) {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, invalid.what());
  }
}

std::optional<std::string> correlation_id(const core::CallOptions& options) {
  if (options.request_id) return options.request_id;
  if (settings::request_id != nullptr && settings::request_id[0] != '\0') return std::string(settings::request_id);
  return std::nullopt;
}

// Unserved databases (no ledger writer): the records of this backend's calls whose transaction
// did not commit, and on a backend's first call those spooled by backends that exited, are
// written in this call's transaction (and handed on again if it does not commit either).
void write_records_handed_on(SpiSession& spi, bool served) {
  std::vector<ledger::TaskRecord> records = ledger::take_pending();
  if (!served && ledger::spool_check_due()) {
    for (ledger::Spooled& spooled : ledger::read_spool(MyDatabaseId, 1000)) {
      spooled.record.spool_path = spooled.path;  // removed when this transaction commits
      records.push_back(std::move(spooled.record));
    }
  }
  for (ledger::TaskRecord& record : records) {
    // Its charges are made when this transaction commits (handed on again if it does not; one
    // read from the spool stays there instead); a record already written carries nothing more
    // to charge, and its file goes.
    if (!write_handed_on_record(spi, record, false)) {
      if (!record.spool_path.empty()) ledger::remove_at_commit(record.spool_path);
      continue;
    }
    record.charges_at_commit = true;
    ledger::keep_until_transaction_end(std::move(record));
  }
}

// How the call's charges are made: in shared memory when the ledger serves the database and has
// room, else in the caller's transaction.
Charges charge_call(const std::string& license_id, const CallOutcome& outcome) {
  // API.md "The ledger": one unit per call that reached a provider. A call whose every request
  // went nowhere (refused connections, the outbound guard) is recorded but not charged.
  if (!reached_a_provider(outcome)) {
    release_admitted_request(license_id);
    return Charges::None;
  }
  if (charge_admitted_request(license_id)) return Charges::Shared;
  return Charges::InTransaction;
}

// The common tail: admit against the quota, call, record, charge, and shape the result.
Datum execute_and_record(SpiSession& spi, const Caller& caller, TaskContext context, CallInput input,
                         int64_t started_ms) {
  const bool served = ledger::served();
  // Served: the writer writes what is handed on; what this backend kept from before its
  // database was served (the writer's first seconds) is written here.
  write_records_handed_on(spi, served);
  const bool raise_on_failure = input.options.raise_on_failure;
  AdmittedCall admitted = admit_ai_request(spi, caller);
  context.license_id = admitted.license_id;
  Router router(spi);
  KeyHealth health(spi, served ? KeyHealth::Writes::Ledger : KeyHealth::Writes::AtCommit);
  CallOutcome outcome;
  CallOutcome interrupted;
  try {
    outcome = run_call(router, health, std::move(input), &interrupted);
    admitted.slot.release();  // the call is no longer processing: its row is written as ended
  } catch (const PgError&) {
    // A cancel or terminate (or any error) after requests were sent: they are paid for. The
    // record is kept (not written: the transaction is failing) and handed on when it aborts.
    context.key_health = health.deferred_events();
    if (interrupted.attempts > 0)
      keep_task_record(context, interrupted, static_cast<long>(now_ms() - started_ms),
                       charge_call(*context.license_id, interrupted));
    throw;
  }
  // Unserved: the call's key health events go with its record, made at commit (no key row
  // locked by the call's statement).
  context.key_health = health.deferred_events();
  if (outcome.attempts == 0 && !outcome.blocked) {
    // Nothing reached a provider: nothing is charged.
    throw Error(kNoUsableKey, "no usable API key for any candidate model",
                "Every key of the candidate providers is inactive, unhealthy, expired or at its rate limit.",
                "Add a key with celaest.add_api_key() or check celaest.v_api_pool_status.");
  }
  long execution_ms = static_cast<long>(now_ms() - started_ms);
  // One unit per call that reached a provider; a call the outbound guard refused reached none.
  // Charged before the row is written: a cancel during the INSERT still finds it charged.
  const Charges charges = charge_call(*context.license_id, outcome);
  // The prompt's statistics, served: in the ledger's shared memory (folded by the writer, the
  // prompt's row never locked by the call), before the row is written so that the row says so
  // (metadata.prompt_stats: what the rebuild after a crash counts, _ledger_rebuild).
  context.prompt_stats_shared =
      served && context.prompt_id && ledger::prompt_used(*context.prompt_id, execution_ms, outcome.result.ok);
  std::string task_id = record_task(spi, context, outcome, execution_ms, charges);
  // Unserved: the record's charges (license, keys, prompt) are made when the transaction commits
  // (ledger/records.hpp), so that the call holds none of those rows past its statement. Served
  // with a full license table: the license row in this transaction, as before.
  if (charges == Charges::InTransaction && served) charge_ai_request(spi, caller);
  // Unserved, the prompt's statistics go with the record at commit; a full shared table: here.
  if (context.prompt_id && (served || charges != Charges::InTransaction) && !context.prompt_stats_shared)
    update_prompt_statistics(spi, *context.prompt_id, outcome, execution_ms);
  if (!outcome.result.ok && raise_on_failure) {
    throw Error(kProviderFailed,
                "AI call failed after " + std::to_string(outcome.attempts) + " attempt(s): " +
                    outcome.result.error_code,
                outcome.result.error_message, "The failure is returned instead when options.raise is not true.");
  }
  return static_cast<Datum>(call_result_jsonb(task_id, outcome, execution_ms));
}

std::vector<core::ChatMessage> parse_messages(const nlohmann::json& messages) {
  if (!messages.is_array() || messages.empty())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_messages must be a non-empty JSON array, got " + messages.dump(),
                "", R"(Use [{"role":"user","content":"..."}].)");
  std::vector<core::ChatMessage> parsed;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string() ||
        !message.contains("content") || !message["content"].is_string())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "p_messages[" + std::to_string(i) + "] must be an object with string role and content, got " +
                      message.dump());
    std::string role = message["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "p_messages[" + std::to_string(i) + "] has invalid role \"" + role + "\"", "",
                  "Roles are system, user and assistant.");
    parsed.push_back({role, message["content"].get<std::string>()});
  }
  return parsed;
}

}  // namespace

}  // namespace celaest::pg

using namespace celaest::pg;
namespace core = celaest::core;

// run_prompt(p_prompt text, p_variables jsonb, p_user_id uuid, p_options jsonb) RETURNS jsonb
CELAEST_FUNCTION(celaest_run_prompt) {
  const int64_t started_ms = now_ms();
  auto reference = text_arg(fcinfo, 0);
  if (!reference) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "p_prompt must not be NULL");
  nlohmann::json variables = parse_json_argument(jsonb_arg(fcinfo, 1), "p_variables", nlohmann::json::object());
  if (!variables.is_object())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_variables must be a JSON object, got " + variables.dump());
  core::CallOptions options = parse_options(parse_json_argument(jsonb_arg(fcinfo, 3), "p_options", {}));

  SpiSession spi;
  Caller caller = resolve_caller(spi, uuid_arg(fcinfo, 2), "run_prompt", fcinfo->flinfo->fn_oid);
  PromptDefinition prompt = load_prompt(spi, *reference);
  RenderedPrompt rendered = render_prompt(prompt, variables);

  // The prompt's sampling settings apply unless the call overrides them.
  if (!options.temperature) options.temperature = prompt.temperature;
  if (!options.max_tokens) options.max_tokens = prompt.max_tokens;
  if (!options.top_p && prompt.top_p != 1.0) options.top_p = prompt.top_p;

  TaskContext context;
  context.organization_id = caller.organization_id;
  context.user_id = caller.user_id;
  context.prompt_id = prompt.id;
  context.input_type = "prompt";
  context.input_text = rendered.user_text;
  context.input_metadata = {{"prompt", prompt.slug + "@" + std::to_string(prompt.version)},
                            {"variables", variables},
                            {"options", parse_json_argument(jsonb_arg(fcinfo, 3), "p_options", nlohmann::json::object())}};
  context.request_id = correlation_id(options);
  context.started_at_ms = started_ms;

  CallInput input{rendered.messages, options, prompt.preferred_model_id};
  return execute_and_record(spi, caller, std::move(context), std::move(input), started_ms);
}

// ai_chat(p_messages jsonb, p_model text, p_user_id uuid, p_options jsonb) RETURNS jsonb
CELAEST_FUNCTION(celaest_ai_chat) {
  const int64_t started_ms = now_ms();
  auto messages_text = jsonb_arg(fcinfo, 0);
  if (!messages_text) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "p_messages must not be NULL");
  nlohmann::json messages_json = nlohmann::json::parse(*messages_text);
  std::vector<core::ChatMessage> messages = parse_messages(messages_json);
  nlohmann::json raw_options = parse_json_argument(jsonb_arg(fcinfo, 3), "p_options", nlohmann::json::object());
  core::CallOptions options = parse_options(raw_options);
  if (auto model = text_arg(fcinfo, 1)) options.model = *model;

  SpiSession spi;
  Caller caller = resolve_caller(spi, uuid_arg(fcinfo, 2), "ai_chat", fcinfo->flinfo->fn_oid);

  TaskContext context;
  context.organization_id = caller.organization_id;
  context.user_id = caller.user_id;
  context.input_type = "chat";
  for (auto it = messages.rbegin(); it != messages.rend(); ++it)
    if (it->role == "user") {
      context.input_text = it->content;
      break;
    }
  context.input_metadata = {{"messages", std::move(messages_json)}, {"options", std::move(raw_options)}};
  context.request_id = correlation_id(options);
  context.started_at_ms = started_ms;

  CallInput input{std::move(messages), options, std::nullopt};
  return execute_and_record(spi, caller, std::move(context), std::move(input), started_ms);
}
