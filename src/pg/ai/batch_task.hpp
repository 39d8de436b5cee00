// A batch task between its claim and its record: loading the tasks a backend claimed, turning
// each into a call (its prompt rendered with its variables, its options routed), and writing
// its end. Shared by _run_claimed_tasks (one pass, in one statement) and the streaming batch
// runner (pg/workers/stream_runner.cpp: many short transactions).
#pragma once

#include <nlohmann/json.hpp>

#include "core/call_options.hpp"

#include "pg/ai/call_runner.hpp"
#include "pg/ai/prompt_source.hpp"
#include "pg/ai/routing.hpp"
#include "pg/ai/task_record.hpp"
#include "pg/boundary/spi.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace celaest::pg {

// 22023 for an option set that does not parse.
core::CallOptions parse_options_or_raise(const nlohmann::json& options);

// The call a prompt makes with these variables: messages plus the prompt's sampling defaults.
CallInput prompt_call(const PromptDefinition& prompt, const nlohmann::json& variables, core::CallOptions options,
                      RenderedPrompt& rendered);

struct ClaimedTask {
  TaskContext context;
  std::optional<CallInput> input;  // set when the task can be called
  std::string error_code;          // otherwise why not (it fails without reaching a provider)
  std::string error_message;
};

// Prompts and routes already checked, kept across the tasks of one transaction.
struct PreparationCache {
  std::map<std::string, PromptDefinition> prompts;
  std::set<std::string> routable;  // option sets known to have candidate models
};

// The tasks this backend claimed (processing, claimed_by = its pid), oldest first; with
// `claimed_since` (a clock_timestamp() text taken before the claim) only those claimed since,
// not the ones already in hand. Each is prepared in a subtransaction of its own, so that one
// whose prompt or route is broken fails alone.
std::vector<ClaimedTask> load_claimed_tasks(SpiSession& spi, Router& router, PreparationCache& cache,
                                            const Text& claimed_since = std::nullopt);

// What the batch tasks ended in one transaction write, together, by flush() before that
// transaction commits: their rows (one multi-row statement), the AI requests submit_batch reserved for tasks
// that never reached a provider (one _return_batch_reservations call), and the prompts'
// running statistics (one UPDATE per prompt, not per task: the prompt row is the hottest row a
// batch writes). Written in the transaction that ends the tasks, so that a unit goes back
// exactly once: if that transaction rolls back, the tasks have not ended either.
class BatchEndings {
 public:
  // A task that never reached a provider: its reservation goes back.
  void return_reservation(const std::optional<std::string>& license_id);
  // A task whose call reached a provider: the prompt's statistics count it.
  void count_prompt_call(const std::string& prompt_id, bool ok, long execution_time_ms);
  // A task's row (written by flush, with the others, in one statement).
  TaskRows& rows() { return rows_; }
  void flush(SpiSession& spi);
  void clear();

 private:
  TaskRows rows_;
  struct PromptCalls {
    long long calls = 0, succeeded = 0, total_ms = 0;
  };
  std::vector<std::string> returned_;
  std::map<std::string, PromptCalls> prompts_;
};

// Writes a batch task's end: its row; the prompt's statistics when a provider was reached and
// the AI request submit_batch reserved given back when none was go to `endings`. `was_called`:
// the task got as far as its call (its time counts from its start), not failed in preparation.
void record_batch_task(SpiSession& spi, const TaskContext& context, CallOutcome& outcome, bool was_called,
                       BatchEndings& endings);

// A uuid[] literal.
std::string uuid_array(const std::vector<std::string>& ids);

}  // namespace celaest::pg
