#include "core/cost.hpp"
#include "core/provider.hpp"

#include "pg/ai/task_record.hpp"

#include "pg/boundary/boundary.hpp"

namespace celaest::pg {

namespace {

Text optional_text(const std::string& value) { return value.empty() ? Text() : Text(value); }

nlohmann::json task_metadata(const CallOutcome& outcome) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& attempt : outcome.history) {
    attempts.push_back({{"model", attempt.model},
                        {"api_key_id", attempt.key_id ? nlohmann::json(*attempt.key_id) : nlohmann::json()},
                        {"http_status", attempt.http_status},
                        {"outcome", attempt.outcome},
                        {"elapsed_ms", attempt.elapsed_ms}});
  }
  const core::ChatResult& result = outcome.result;
  nlohmann::json metadata = {{"attempts", attempts}};
  if (!result.finish_reason.empty()) metadata["finish_reason"] = result.finish_reason;
  if (!result.request_id.empty()) metadata["provider_request_id"] = result.request_id;
  if (!result.provider_model.empty()) metadata["provider_model"] = result.provider_model;
  if (result.http_status != 0) metadata["http_status"] = result.http_status;
  if (outcome.model) metadata["provider"] = std::string(core::provider_name(outcome.model->provider));
  return metadata;
}

// The columns of a task row, and the update of an existing (batch) task with the same values.
constexpr const char* kTaskInsert =
    "INSERT INTO celaest.processed_tasks AS t ("
    "  id, organization_id, user_id, license_id, batch_id, model_id, api_key_id, prompt_id,"
    "  input_type, input_text, input_metadata, output_json, output_raw, status, error_message, error_code,"
    "  retry_count, tokens_input, tokens_output, cost_usd, execution_time_ms, queue_time_ms, ai_time_ms,"
    "  request_id, user_agent, ip_address, metadata, started_at, completed_at)"
    " VALUES (coalesce($1::uuid, gen_random_uuid()), $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6::uuid, $7::uuid,"
    "  $8::uuid, $9, $10, $11::jsonb, $12::jsonb, $13, $14::celaest.task_status, $15, $16, $17::int, $18::int,"
    "  $19::int, $20::numeric, $21::int, $22::int, $23::int, $24,"
    "  nullif(current_setting('celaest.user_agent'), ''), nullif(current_setting('celaest.client_ip'), '')::inet,"
    "  $25::jsonb, to_timestamp($26::float8 / 1000), clock_timestamp())";
constexpr const char* kTaskUpsertTail =
    " ON CONFLICT (id) DO UPDATE SET"
    "  license_id = coalesce(EXCLUDED.license_id, t.license_id), model_id = EXCLUDED.model_id,"
    "  api_key_id = EXCLUDED.api_key_id, input_text = EXCLUDED.input_text,"
    "  output_json = EXCLUDED.output_json, output_raw = EXCLUDED.output_raw, status = EXCLUDED.status,"
    "  error_message = EXCLUDED.error_message, error_code = EXCLUDED.error_code,"
    "  retry_count = EXCLUDED.retry_count, tokens_input = EXCLUDED.tokens_input,"
    "  tokens_output = EXCLUDED.tokens_output, cost_usd = EXCLUDED.cost_usd,"
    "  execution_time_ms = EXCLUDED.execution_time_ms, queue_time_ms = EXCLUDED.queue_time_ms,"
    "  ai_time_ms = EXCLUDED.ai_time_ms, request_id = coalesce(t.request_id, EXCLUDED.request_id),"
    "  metadata = t.metadata || EXCLUDED.metadata, started_at = EXCLUDED.started_at,"
    "  completed_at = EXCLUDED.completed_at";

}  // namespace

const char* task_status(const CallOutcome& outcome) { return outcome.result.ok ? "completed" : "failed"; }

std::string record_task(SpiSession& spi, const TaskContext& context, const CallOutcome& outcome,
                        long execution_time_ms) {
  const core::ChatResult& result = outcome.result;
  std::optional<std::string> model_id = outcome.model ? Text(outcome.model->id) : Text();
  // A synchronous call's task is new: a plain INSERT. A batch task exists (pending): the same
  // values update it (an upsert's speculative insertion is not free, so only batches pay it).
  static const std::string insert_sql = std::string(kTaskInsert) + " RETURNING id";
  static const std::string upsert_sql = std::string(kTaskInsert) + kTaskUpsertTail + " RETURNING id";
  Text task_id = spi.scalar(context.task_id ? upsert_sql : insert_sql,
      {context.task_id, context.organization_id, context.user_id, context.license_id, context.batch_id, model_id,
       outcome.key_id, context.prompt_id, context.input_type, context.input_text, context.input_metadata.dump(),
       outcome.output_json, optional_text(result.text), std::string(task_status(outcome)),
       result.ok ? Text() : optional_text(result.error_message), result.ok ? Text() : optional_text(result.error_code),
       std::to_string(outcome.attempts > 0 ? outcome.attempts - 1 : 0), std::to_string(result.tokens_input),
       std::to_string(result.tokens_output), core::format_micro_usd(outcome.cost_micro_usd),
       std::to_string(execution_time_ms), std::to_string(context.queue_time_ms), std::to_string(outcome.ai_time_ms),
       context.request_id, task_metadata(outcome).dump(), std::to_string(context.started_at_ms)});
  if (!task_id) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: recording the task returned no id");
  return *task_id;
}

void update_prompt_statistics(SpiSession& spi, const std::string& prompt_id, const CallOutcome& outcome,
                              long execution_time_ms) {
  spi.run(
      "UPDATE celaest.prompts_master SET usage_count = usage_count + 1,"
      "  avg_response_time_ms = ((coalesce(avg_response_time_ms, 0)::numeric * usage_count + $2::int)"
      "                          / (usage_count + 1))::int,"
      "  success_rate = round((coalesce(success_rate, 0) * usage_count + $3::int * 100) / (usage_count + 1), 2)"
      " WHERE id = $1::uuid",
      {prompt_id, std::to_string(execution_time_ms), std::string(outcome.result.ok ? "1" : "0")});
}

nlohmann::json call_result(const std::string& task_id, const CallOutcome& outcome, long execution_time_ms) {
  const core::ChatResult& result = outcome.result;
  nlohmann::json output_json;
  if (outcome.output_json) output_json = nlohmann::json::parse(*outcome.output_json);
  auto text_or_null = [](const std::string& text) { return text.empty() ? nlohmann::json() : nlohmann::json(text); };
  return {
      {"task_id", task_id},
      {"status", task_status(outcome)},
      {"output_text", result.ok || !result.text.empty() ? nlohmann::json(result.text) : nlohmann::json()},
      {"output_json", output_json},
      {"provider", outcome.model ? nlohmann::json(std::string(core::provider_name(outcome.model->provider)))
                                 : nlohmann::json()},
      {"model", outcome.model ? nlohmann::json(outcome.model->model_id) : nlohmann::json()},
      {"tokens_input", result.tokens_input},
      {"tokens_output", result.tokens_output},
      {"cost_usd", static_cast<double>(outcome.cost_micro_usd) / 1e6},
      {"execution_time_ms", execution_time_ms},
      {"ai_time_ms", outcome.ai_time_ms},
      {"retry_count", outcome.attempts > 0 ? outcome.attempts - 1 : 0},
      {"error_code", result.ok ? nlohmann::json() : text_or_null(result.error_code)},
      {"error_message", result.ok ? nlohmann::json() : text_or_null(result.error_message)},
      {"finish_reason", text_or_null(result.finish_reason)},
      {"request_id", text_or_null(result.request_id)},
  };
}

}  // namespace celaest::pg
