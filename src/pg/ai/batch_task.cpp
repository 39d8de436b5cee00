#include "pg/ai/batch_task.hpp"

#include "pg/ledger/counters.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/subtransaction.hpp"
#include "pg/boundary/wall_clock.hpp"

namespace celaest::pg {

core::CallOptions parse_options_or_raise(const nlohmann::json& options) {
  try {
    return core::parse_call_options(options);
  } catch (const core::InvalidOption& invalid) {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, invalid.what());
  }
}

CallInput prompt_call(const PromptDefinition& prompt, const nlohmann::json& variables, core::CallOptions options,
                      RenderedPrompt& rendered) {
  rendered = render_prompt(prompt, variables);
  if (!options.temperature) options.temperature = prompt.temperature;
  if (!options.max_tokens) options.max_tokens = prompt.max_tokens;
  if (!options.top_p && prompt.top_p != 1.0) options.top_p = prompt.top_p;
  return CallInput{rendered.messages, options, prompt.preferred_model_id};
}

std::string uuid_array(const std::vector<std::string>& ids) {
  std::string array = "{";
  for (const std::string& id : ids) array += (array.size() > 1 ? "," : "") + id;
  return array + "}";
}

namespace {

// Renders the task's prompt and checks that its options route. Throws (our Error or
// PostgreSQL's) when the task cannot be called.
void prepare(SpiSession& spi, Router& router, PreparationCache& cache, ClaimedTask& task) {
  TaskContext& context = task.context;
  if (!context.prompt_id) throw Error(ERRCODE_NO_DATA_FOUND, "the batch's prompt no longer exists");
  auto found = cache.prompts.find(*context.prompt_id);
  if (found == cache.prompts.end()) {
    Text slug = spi.scalar("SELECT slug || '@' || version FROM celaest.prompts_master WHERE id = $1::uuid",
                           {*context.prompt_id}, true);
    if (!slug) throw Error(ERRCODE_NO_DATA_FOUND, "the batch's prompt no longer exists");
    found = cache.prompts.emplace(*context.prompt_id, load_prompt(spi, *slug)).first;
  }
  nlohmann::json options = context.input_metadata.value("options", nlohmann::json::object());
  RenderedPrompt rendered;
  task.input = prompt_call(found->second, context.input_metadata.value("variables", nlohmann::json::object()),
                           parse_options_or_raise(options), rendered);
  // A task whose options no longer route (model deactivated or unknown) fails alone here;
  // left to the call it would throw and fail everything around it, other batches' tasks too.
  std::string route = options.dump() + '|' + task.input->preferred_model_id.value_or("");
  if (!cache.routable.count(route)) {
    router.candidate_models(task.input->options, task.input->preferred_model_id);
    cache.routable.insert(route);
  }
  context.input_text = rendered.user_text;
}

// The common case: the task's prompt and route were already checked in this transaction, so
// preparing it needs no database access and no subtransaction (a subtransaction per task was
// a good part of a claim). false: something is not in the cache yet (prepare() does it); our
// own Error (a missing variable) is thrown as prepare() would throw it.
bool prepare_from_cache(PreparationCache& cache, ClaimedTask& task) {
  TaskContext& context = task.context;
  if (!context.prompt_id) return false;
  auto found = cache.prompts.find(*context.prompt_id);
  if (found == cache.prompts.end()) return false;
  nlohmann::json options = context.input_metadata.value("options", nlohmann::json::object());
  RenderedPrompt rendered;
  task.input = prompt_call(found->second, context.input_metadata.value("variables", nlohmann::json::object()),
                           parse_options_or_raise(options), rendered);
  if (!cache.routable.count(options.dump() + '|' + task.input->preferred_model_id.value_or(""))) {
    task.input.reset();
    return false;
  }
  context.input_text = rendered.user_text;
  return true;
}

}  // namespace

std::vector<ClaimedTask> load_claimed_tasks(SpiSession& spi, Router& router, PreparationCache& cache,
                                            const Text& claimed_since) {
  QueryResult claimed = spi.run(
      "SELECT id, organization_id, user_id, batch_id, prompt_id, input_metadata::text, license_id,"
      "       (extract(epoch FROM started_at) * 1000)::bigint, queue_time_ms, request_id,"
      "       coalesce(metadata->>'interrupted' = 'true', false)"
      " FROM celaest.processed_tasks"
      " WHERE status = 'processing' AND metadata->>'claimed_by' = pg_backend_pid()::text"
      "   AND ($1::timestamptz IS NULL OR started_at >= $1::timestamptz)"
      " ORDER BY created_at",
      {claimed_since});
  std::vector<ClaimedTask> tasks;
  tasks.reserve(claimed.rows.size());
  for (const Row& row : claimed.rows) {
    ClaimedTask task;
    TaskContext& context = task.context;
    context.task_id = *row[0];
    context.organization_id = *row[1];
    context.user_id = *row[2];
    context.batch_id = row[3];
    context.prompt_id = row[4];
    context.license_id = row[6];
    context.input_type = "batch";
    context.input_metadata = nlohmann::json::parse(row[5].value_or("{}"));
    context.started_at_ms = row[7] ? std::stoll(*row[7]) : now_ms();
    context.queue_time_ms = row[8] ? std::stol(*row[8]) : 0;
    context.request_id = row[9];
    context.interrupted = row[10] && *row[10] == "t";
    // A task that needs the database to be prepared is prepared in a subtransaction of its own:
    // a task whose preparation fails, with our error (a missing variable, a model that no
    // longer routes) or with PostgreSQL's (its prompt's rows), fails alone and the rest go on
    // with a working SPI. A cancel or a shutdown ends the whole statement
    // (PgError::ends_the_statement).
    try {
      if (!prepare_from_cache(cache, task)) in_subtransaction([&] { prepare(spi, router, cache, task); });
    } catch (const Error& error) {
      task.input.reset();
      task.error_code = error.sqlstate() == kTemplateVariableMissing ? "missing_variable"
                        : error.sqlstate() == kNoUsableKey            ? "no_usable_model"
                                                                      : "invalid_task";
      task.error_message = error.message();
    } catch (const PgError& error) {
      if (error.ends_the_statement()) throw;
      task.input.reset();
      task.error_code = "invalid_task";
      task.error_message = error.message();
    }
    tasks.push_back(std::move(task));
  }
  return tasks;
}

void BatchEndings::return_reservation(const std::optional<std::string>& license_id) {
  if (license_id) returned_.push_back(*license_id);
}

void BatchEndings::count_prompt_call(const std::string& prompt_id, bool ok, long execution_time_ms) {
  PromptCalls& calls = prompts_[prompt_id];
  ++calls.calls;
  if (ok) ++calls.succeeded;
  calls.total_ms += execution_time_ms;
}

void BatchEndings::flush(SpiSession& spi) {
  rows_.write(spi);
  if (!returned_.empty())
    spi.run("SELECT celaest._return_batch_reservations($1::uuid[])", {uuid_array(returned_)});
  // The same running values as update_prompt_statistics, for n calls at once.
  for (const auto& [prompt_id, calls] : prompts_)
    spi.run(
        "UPDATE celaest.prompts_master SET usage_count = usage_count + $2::int,"
        "  avg_response_time_ms = ((coalesce(avg_response_time_ms, 0)::numeric * usage_count + $3::bigint)"
        "                          / (usage_count + $2::int))::int,"
        "  success_rate = round((coalesce(success_rate, 0) * usage_count + $4::int * 100) / (usage_count + $2::int), 2)"
        " WHERE id = $1::uuid",
        {prompt_id, std::to_string(calls.calls), std::to_string(calls.total_ms), std::to_string(calls.succeeded)});
  clear();
}

void BatchEndings::clear() {
  rows_.clear();
  returned_.clear();
  prompts_.clear();
}

void record_batch_task(SpiSession& /*spi*/, const TaskContext& context, CallOutcome& outcome, bool was_called,
                       BatchEndings& endings) {
  if (outcome.attempts == 0 && !outcome.blocked && outcome.result.error_code.empty()) {
    outcome.result.error_code = "no_usable_key";
    outcome.result.error_message = "no usable API key for any candidate model";
  }
  const long execution_ms = was_called ? static_cast<long>(now_ms() - context.started_at_ms) : 0;
  // The license was charged by submit_batch's reservation; the keys' usage goes to the ledger's
  // counters where a writer serves this database, else into this transaction.
  endings.rows().add(context, outcome, execution_ms, ledger::served() ? Charges::KeysShared : Charges::InTransaction);
  if (context.prompt_id && outcome.attempts > 0) endings.count_prompt_call(*context.prompt_id, outcome.result.ok, execution_ms);
  // A request that never reached a provider gives its reservation back (unless a call of it may
  // have gone out before a crash).
  // Nothing went out either when every connection was refused (API.md: one unit per call that
  // reached a provider).
  if (!reached_a_provider(outcome) && !context.interrupted) endings.return_reservation(context.license_id);
}

}  // namespace celaest::pg
