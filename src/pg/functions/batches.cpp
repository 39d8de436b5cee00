// Batches, native side: submit_batch() and _run_claimed_tasks() (the batch runner's calls,
// side by side through libcurl multi, with the same call plan as run_prompt).
#include <nlohmann/json.hpp>

#include "core/call_options.hpp"

#include "pg/ai/batch_task.hpp"
#include "pg/ai/call_runner.hpp"
#include "pg/identity/caller.hpp"
#include "pg/ai/prompt_source.hpp"
#include "pg/ai/task_record.hpp"
#include "pg/ledger/counters.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/origin_triggers_off.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/subtransaction.hpp"
#include "pg/workers/launcher.hpp"
#include "pg/workers/registry.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/dbcommands.h"
}

#include <chrono>
#include <map>
#include <optional>
#include <set>

namespace core = celaest::core;
using namespace celaest::pg;

namespace {

std::string current_database_name() {
  const char* name = pg_guarded([] { return get_database_name(MyDatabaseId); });
  return name ? name : "?";
}

// The batch runner is woken when the transaction that queued tasks commits: woken earlier,
// it would look before the rows are visible, find nothing and sleep for its poll interval.
bool wake_runner_at_commit = false;

// A failed wake-up is only a WARNING (the runner polls every second anyway).
void wake_runner_at_end_of_transaction(XactEvent event, void*) noexcept {
  run_entry_point("batch runner wake-up", on_failure_at(event), [&] {
    if (!wake_runner_at_commit) return;
    switch (event) {
      case XACT_EVENT_COMMIT:
      case XACT_EVENT_PARALLEL_COMMIT:
        wake_runner_at_commit = false;
        workers::wake_worker(workers::Role::BatchRunner);
        break;
      case XACT_EVENT_ABORT:
      case XACT_EVENT_PARALLEL_ABORT:
      case XACT_EVENT_PREPARE:  // COMMIT PREPARED comes later, from any session: the poll finds it
        wake_runner_at_commit = false;
        break;
      default:
        break;
    }
  });
}

void wake_runner_when_committed() {
  static bool registered = false;
  if (!registered) {
    pg_guarded([] { RegisterXactCallback(wake_runner_at_end_of_transaction, nullptr); });
    registered = true;
  }
  wake_runner_at_commit = true;
}

}  // namespace

namespace {

// Whether submit_batch's task rows may be inserted without their per-row foreign-key checks
// (see submit_batch): true when
//  - no trigger that replica mode would skip (or fire only then) fires on an INSERT into
//    processed_tasks but its foreign keys' checks (RI_FKey_check_ins) and the in-flight limit
//    (which fires for processing and retrying rows only, never for the pending rows
//    submit_batch inserts); triggers enabled ALWAYS (the ROI store's) fire either way, and
//  - the table has no rule (replica mode would skip those too),
//  - every foreign key of processed_tasks is the batch's own (batch_id), on a column
//    submit_batch leaves NULL (model_id, api_key_id), or has a twin on task_batches (the same
//    column, table and key) whose check is enforced on INSERT.
// Read from the catalogs on every submit: a changed schema takes the ordinary path at once.
constexpr const char* kTaskRowsPrechecked = R"SQL(
SELECT NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_trigger g
          WHERE g.tgrelid = 'celaest.processed_tasks'::regclass
            AND (g.tgtype::int & 4) <> 0 AND g.tgenabled IN ('O', 'R')
            AND NOT (g.tgisinternal AND g.tgconstraint <> 0 AND g.tgfoid = 'pg_catalog."RI_FKey_check_ins"'::regproc)
            AND NOT (g.tgname = 'processed_tasks_enforce_max_concurrent_tasks'
                     AND g.tgfoid = 'celaest._enforce_max_concurrent_tasks'::regproc))
   AND NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_constraint p
          WHERE p.conrelid = 'celaest.processed_tasks'::regclass AND p.contype = 'f'
            AND NOT coalesce(p.confrelid = 'celaest.task_batches'::regclass
                             AND p.conkey = ARRAY[(SELECT attnum FROM pg_catalog.pg_attribute
                                                    WHERE attrelid = p.conrelid AND attname = 'batch_id')], false)
            AND NOT coalesce(p.conkey <@ (SELECT array_agg(attnum) FROM pg_catalog.pg_attribute
                                           WHERE attrelid = p.conrelid AND attname IN ('model_id', 'api_key_id')), false)
            AND NOT EXISTS (
                  SELECT 1 FROM pg_catalog.pg_constraint b
                   WHERE b.conrelid = 'celaest.task_batches'::regclass AND b.contype = 'f'
                     AND b.confrelid = p.confrelid AND b.confkey = p.confkey AND b.convalidated
                     AND (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(b.conkey) WITH ORDINALITY AS k(num, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = b.conrelid AND a.attnum = k.num)
                       = (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(p.conkey) WITH ORDINALITY AS k(num, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.num)
                     AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                                  WHERE t.tgconstraint = b.oid AND t.tgrelid = b.conrelid
                                    AND t.tgfoid = 'pg_catalog."RI_FKey_check_ins"'::regproc
                                    AND t.tgenabled IN ('O', 'A'))))
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class = 'celaest.processed_tasks'::regclass)
   AND pg_catalog.current_setting('session_replication_role') = 'origin'
)SQL";

}  // namespace

// submit_batch(p_prompt text, p_inputs jsonb, p_user_id uuid, p_options jsonb) RETURNS uuid
CELAEST_FUNCTION(celaest_submit_batch) {
  auto reference = text_arg(fcinfo, 0);
  auto inputs_text = jsonb_arg(fcinfo, 1);
  if (!reference) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "p_prompt must not be NULL");
  if (!inputs_text) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "p_inputs must not be NULL");
  nlohmann::json inputs = nlohmann::json::parse(*inputs_text);
  if (!inputs.is_array() || inputs.empty())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_inputs must be a non-empty JSON array of objects");
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].is_object())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  "p_inputs[" + std::to_string(i) + "] must be a JSON object of variables, got " + inputs[i].dump());
  nlohmann::json options = nlohmann::json::parse(jsonb_arg(fcinfo, 3).value_or("{}"));
  if (!options.is_object()) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_options must be a JSON object");
  core::CallOptions call_options = parse_options_or_raise(options);
  std::optional<std::string> name;
  if (options.contains("name") && options["name"].is_string()) name = options["name"].get<std::string>();
  int priority = 0;
  if (options.contains("priority")) {
    if (!options["priority"].is_number_integer())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid option \"priority\": " + options["priority"].dump());
    priority = options["priority"].get<int>();
  }

  // A batch nobody would run is refused before anything is written (API.md submit_batch).
  if (!pg_guarded([] { return workers::serves_current_database(); }))
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "no CELAEST batch runner serves database \"" + current_database_name() + "\"",
                "The batch runner is a background worker of the library preloaded by the server.",
                "Add celaest to shared_preload_libraries (and this database to celaest.databases, when that is "
                "set), then restart the server.");
  SpiSession spi;
  Caller caller = resolve_caller(spi, uuid_arg(fcinfo, 2), "submit_batch", fcinfo->flinfo->fn_oid);
  PromptDefinition prompt = load_prompt(spi, *reference);
  // Every input is rendered now: a missing variable is the caller's error (LC030), not a
  // task that fails later in the background. Rendering is pure C++; the catch only names the
  // input in our own error and throws it on (a PgError is not an Error and would pass by).
  for (size_t i = 0; i < inputs.size(); ++i) {
    RenderedPrompt rendered;
    try {
      prompt_call(prompt, inputs[i], call_options, rendered);
    } catch (const Error& missing) {
      throw Error(missing.sqlstate(), "p_inputs[" + std::to_string(i) + "]: " + missing.message(), missing.detail(),
                  missing.hint());
    }
  }
  // The license, max_batch_size and the AI requests left (LC001–LC004, LC010).
  Text license = spi.scalar("SELECT celaest._check_batch($1::uuid, $2::int)",
                            {caller.organization_id, std::to_string(inputs.size())});
  // One AI request reserved per input, all at once (API.md submit_batch), by consume_quota: one
  // conditional UPDATE of the license row that grants only while the counter leaves room (so
  // concurrent submits at the quota's edge cannot overrun it: the second waits for the first's
  // row lock and looks again), and, where the ledger serves the database, published to the
  // ledger's shared memory while this transaction is open, so the quota gate, check_limit and
  // consume_quota of other sessions count it before it commits. The runner's claim then charges
  // nothing; a task that never reaches a provider gives its unit back.
  spi.run("SELECT celaest.consume_quota($1::uuid, 'ai_requests', $2::bigint)",
          {caller.organization_id, std::to_string(inputs.size())});
  // An unknown model or provider option is the caller's error (22023), and a batch with no
  // active model to run on is refused now (LC020), not failed task by task later.
  Router router(spi);
  router.candidate_models(call_options, prompt.preferred_model_id);
  // The model chosen now is recorded on the batch; routing still happens per task.
  Text model_id = spi.scalar(
      "SELECT id FROM celaest.ai_models WHERE is_active AND ("
      "  ($1 IS NOT NULL AND model_id = $1) OR ($1 IS NULL AND (id = $2::uuid OR is_default)))"
      " ORDER BY (id = $2::uuid) IS TRUE DESC, priority DESC LIMIT 1",
      {call_options.model, prompt.preferred_model_id}, true);
  Text batch_id = spi.scalar(
      "INSERT INTO celaest.task_batches (organization_id, user_id, license_id, prompt_id, model_id, name,"
      "  total_tasks, priority, options)"
      " VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6, $7::int, $8::int, $9::jsonb) RETURNING id",
      {caller.organization_id, caller.user_id, license, prompt.id, model_id, name, std::to_string(inputs.size()),
       std::to_string(priority), options.dump()});
  const auto insert_tasks = [&] {
    spi.run(
        "INSERT INTO celaest.processed_tasks (organization_id, user_id, license_id, batch_id, prompt_id, input_type,"
        "  input_metadata, request_id, status)"
        " SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::uuid, 'batch',"
        "  jsonb_build_object('variables', input, 'options', $6::jsonb, 'index', ordinality - 1), $7, 'pending'"
        " FROM jsonb_array_elements($8::jsonb) WITH ORDINALITY AS i(input, ordinality)",
        {caller.organization_id, caller.user_id, license, *batch_id, prompt.id, options.dump(),
         call_options.request_id, *inputs_text});
  };
  // Every task row references what the batch row above references (the organization, the user,
  // the license, the prompt) and the batch row itself. Inserting the batch row checked those
  // references once, each check taking FOR KEY SHARE on the referenced row until this
  // transaction ends, so none of them can go away or change its key before the tasks commit;
  // the batch row is this transaction's own. The same checks once per task row (five a row:
  // about a third of the INSERT's time for 1,000 rows) would find what is already found and
  // lock what is already locked, so they are left out, when the schema is the one this
  // reasoning rests on (kTaskRowsPrechecked: the only INSERT triggers on the task
  // table are its foreign-key checks and the in-flight limit, which pending rows never fire,
  // it has no rule, and every foreign key a task row fills has its twin, enforced, on the
  // batch row).
  if (spi.scalar(kTaskRowsPrechecked) == Text("t")) {
    with_origin_triggers_off(insert_tasks);
  } else {
    insert_tasks();
  }
  spi.run(
      "INSERT INTO celaest.license_usage_log (id, license_id, organization_id, metric, quantity, period_start,"
      "  period_end, user_id, metadata)"
      " SELECT gen_random_uuid(), l.id, l.organization_id, 'ai_requests', $2::bigint, l.current_period_start,"
      "  l.current_period_end, $3::uuid, jsonb_build_object('event', 'batch_reserve', 'batch_id', $4::uuid)"
      " FROM celaest.licenses l WHERE l.id = $1::uuid",
      {license, std::to_string(inputs.size()), caller.user_id, *batch_id});
  wake_runner_when_committed();
  return uuid_datum(*batch_id);
}

CELAEST_FUNCTION(celaest_wake_batch_runner) {
  workers::wake_worker(workers::Role::BatchRunner);
  PG_RETURN_VOID();
}

// _run_claimed_tasks(p_parallel integer) RETURNS integer: the tasks this backend claimed, in one
// pass (for a session running the queue by hand; the batch runner streams them instead).
CELAEST_FUNCTION(celaest_run_claimed_tasks) {
  const long long parallel = std::max(1, PG_GETARG_INT32(0));
  SpiSession spi;
  Router router(spi);
  // The runner serves only databases the ledger serves: the keys' usage goes to its counters.
  KeyHealth health(spi, ledger::served() ? KeyHealth::Writes::Ledger : KeyHealth::Writes::Rows);
  PreparationCache cache;
  std::vector<ClaimedTask> claimed = load_claimed_tasks(spi, router, cache);
  if (claimed.empty()) return Int32GetDatum(0);

  std::vector<CallInput> inputs;
  std::vector<ClaimedTask*> called;
  for (ClaimedTask& task : claimed) {
    if (!task.input) continue;
    inputs.push_back(std::move(*task.input));
    called.push_back(&task);
  }
  std::vector<CallOutcome> outcomes = run_calls(router, health, std::move(inputs), static_cast<size_t>(parallel));
  BatchEndings endings;
  for (size_t i = 0; i < outcomes.size(); ++i) record_batch_task(spi, called[i]->context, outcomes[i], true, endings);
  std::vector<std::string> ids;
  for (ClaimedTask& task : claimed) {
    ids.push_back(*task.context.task_id);
    if (task.input) continue;
    CallOutcome outcome;
    outcome.result.error_code = task.error_code;
    outcome.result.error_message = task.error_message;
    record_batch_task(spi, task.context, outcome, false, endings);
  }
  endings.flush(spi);
  spi.run(
      "SELECT celaest._refresh_batch(b) FROM (SELECT DISTINCT batch_id FROM celaest.processed_tasks"
      " WHERE id = ANY($1::uuid[])) s(b)",
      {uuid_array(ids)});
  return Int32GetDatum(static_cast<int32>(claimed.size()));
}
