// Recording a finished call: the processed_tasks row (every telemetry column), the prompt's
// running statistics, and the jsonb result returned to the caller (API.md run_prompt).
#pragma once

#include <nlohmann/json.hpp>

#include "pg/ai/call_runner.hpp"
#include "pg/boundary/spi.hpp"

#include <optional>
#include <string>

namespace celaest::pg {

struct TaskContext {
  std::optional<std::string> task_id;  // set for batch tasks (their row exists), else new
  std::string organization_id;
  std::string user_id;
  std::optional<std::string> license_id;
  std::optional<std::string> prompt_id;
  std::optional<std::string> batch_id;
  std::string input_type;  // "prompt" or "chat"
  std::string input_text;
  nlohmann::json input_metadata = nlohmann::json::object();
  std::optional<std::string> request_id;
  int64_t started_at_ms = 0;  // Unix epoch ms
  long queue_time_ms = 0;
};

// Inserts (or, for a batch task, completes) the processed_tasks row; returns its id.
std::string record_task(SpiSession& spi, const TaskContext& context, const CallOutcome& outcome,
                        long execution_time_ms);
// usage_count, avg_response_time_ms and success_rate of the prompt, kept as running values.
void update_prompt_statistics(SpiSession& spi, const std::string& prompt_id, const CallOutcome& outcome,
                              long execution_time_ms);
// The caller's jsonb result.
nlohmann::json call_result(const std::string& task_id, const CallOutcome& outcome, long execution_time_ms);
// "completed" or "failed".
const char* task_status(const CallOutcome& outcome);

}  // namespace celaest::pg
