#include "core/cost.hpp"
#include "core/provider.hpp"

#include "pg/ai/task_record.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/jsonb_build.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/ledger/counters.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
}

#include <algorithm>
#include <cstdio>
#include <map>
#include <string_view>

namespace celaest::pg {

namespace {

Text optional_text(const std::string& value) { return value.empty() ? Text() : Text(value); }

// Whether an attempt's request was sent (the outbound guard refuses some before sending).
// Whether an attempt's request went out: the outbound guard refuses some before sending, and a
// refused or unreachable connection sends nothing. Only those a provider may bill are charged.
bool sent(const core::AttemptRecord& attempt) { return attempt.sent && attempt.outcome != "blocked_destination"; }

const char* ledger_mark(Charges charges) {
  switch (charges) {
    case Charges::Shared:
      return "shared";
    case Charges::KeysShared:
      return "keys";
    default:
      return nullptr;
  }
}

nlohmann::json task_metadata(const CallOutcome& outcome, Charges charges, bool prompt_stats_shared) {
  const core::ChatResult& result = outcome.result;
  nlohmann::json metadata = {{"attempts", attempts_json(outcome)}};
  if (!result.finish_reason.empty()) metadata["finish_reason"] = result.finish_reason;
  if (!result.request_id.empty()) metadata["provider_request_id"] = result.request_id;
  if (!result.provider_model.empty()) metadata["provider_model"] = result.provider_model;
  if (result.http_status != 0) metadata["http_status"] = result.http_status;
  if (outcome.model) metadata["provider"] = std::string(core::provider_name(outcome.model->provider));
  // Which charges went through the ledger's shared memory: what the writer rebuilds the
  // counters from after a crash (src/sql/47_ledger.sql, _ledger_rebuild).
  if (const char* mark = ledger_mark(charges)) metadata["ledger"] = mark;
  if (prompt_stats_shared) metadata["prompt_stats"] = "shared";
  return metadata;
}

}  // namespace

bool reached_a_provider(const CallOutcome& outcome) {
  for (const auto& attempt : outcome.history)
    if (sent(attempt)) return true;
  return false;
}

nlohmann::json attempts_json(const CallOutcome& outcome) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& attempt : outcome.history) {
    nlohmann::json entry = {{"model", attempt.model},
                            {"api_key_id", attempt.key_id ? nlohmann::json(*attempt.key_id) : nlohmann::json()},
                            {"http_status", attempt.http_status},
                            {"outcome", attempt.outcome},
                            {"elapsed_ms", attempt.elapsed_ms},
                            {"tokens", attempt.tokens}};
    // Marked only when false: the ledger's rebuild and the books count every other attempt.
    if (!sent(attempt)) entry["sent"] = false;
    attempts.push_back(std::move(entry));
  }
  return attempts;
}

namespace {

// The columns of a task row, and the update of an existing (batch) task with the same values.
// Every value is a parameter (the client's user agent and address, the completion time
// included): the ledger writer may write the same row later, in another session.
constexpr const char* kTaskInsert =
    "INSERT INTO celaest.processed_tasks AS t ("
    "  id, organization_id, user_id, license_id, batch_id, model_id, api_key_id, prompt_id,"
    "  input_type, input_text, input_metadata, output_json, output_raw, status, error_message, error_code,"
    "  retry_count, tokens_input, tokens_output, cost_usd, execution_time_ms, queue_time_ms, ai_time_ms,"
    "  request_id, user_agent, ip_address, metadata, started_at, completed_at)"
    " VALUES (coalesce($1::uuid, gen_random_uuid()), $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6::uuid, $7::uuid,"
    "  $8::uuid, $9, $10, $11::jsonb, $12::jsonb, $13, $14::celaest.task_status, $15, $16, $17::int, $18::int,"
    "  $19::int, $20::numeric, $21::int, $22::int, $23::int, $24,"
    "  $27, $28::inet, $25::jsonb, to_timestamp($26::float8 / 1000), to_timestamp($29::float8 / 1000))";
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

// The parameters' types, in the order of kTaskInsert's $1..$29: each value is read by its
// type's input function before the statement runs, rather than by 29 casts that the executor
// would set up again on every call (SpiSession::run_typed). The status stays text: its cast
// names the enum.
const std::vector<unsigned int>& task_param_types() {
  static const std::vector<unsigned int> types = {
      UUIDOID, UUIDOID, UUIDOID, UUIDOID, UUIDOID, UUIDOID, UUIDOID, UUIDOID,  // $1-$8 ids
      TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,  // $9-$16
      INT4OID, INT4OID, INT4OID, NUMERICOID, INT4OID, INT4OID, INT4OID,          // $17-$23
      TEXTOID, JSONBOID, FLOAT8OID, TEXTOID, INETOID, FLOAT8OID};                // $24-$29
  return types;
}

}  // namespace

const char* task_status(const CallOutcome& outcome) { return outcome.result.ok ? "completed" : "failed"; }

namespace {

// A version 4 uuid, fixed before the row is first written (the ledger's records are idempotent
// by it).
std::string new_task_id() {
  unsigned char bytes[16];
  for (unsigned char& byte : bytes) byte = static_cast<unsigned char>(pg_prng_uint32(&pg_global_prng_state));
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  char text[37];
  snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10],
                bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
  return text;
}

Text setting_or_null(const char* value) { return value == nullptr || value[0] == '\0' ? Text() : Text(value); }

const std::string& insert_sql() {
  // A synchronous call's task is new: a plain INSERT. A batch task exists (pending): the same
  // values update it (an upsert's speculative insertion is not free, so only batches pay it).
  // No RETURNING: the id is the one given ($1), and a projection per call is not free either.
  static const std::string sql = kTaskInsert;
  return sql;
}
const std::string& upsert_sql() {
  static const std::string sql = std::string(kTaskInsert) + kTaskUpsertTail + " RETURNING id";
  return sql;
}

ledger::TaskRecord task_record(const TaskContext& context, const CallOutcome& outcome, long execution_time_ms,
                               Charges charges) {
  const core::ChatResult& result = outcome.result;
  std::optional<std::string> model_id = outcome.model ? Text(outcome.model->id) : Text();
  ledger::TaskRecord record;
  record.upsert = context.task_id.has_value();
  const std::string task_id = context.task_id ? *context.task_id : new_task_id();
  record.params = {task_id, context.organization_id, context.user_id, context.license_id, context.batch_id, model_id,
       outcome.key_id, context.prompt_id, context.input_type, context.input_text, context.input_metadata.dump(),
       outcome.output_json, optional_text(result.text), std::string(task_status(outcome)),
       result.ok ? Text() : optional_text(result.error_message), result.ok ? Text() : optional_text(result.error_code),
       std::to_string(outcome.attempts > 0 ? outcome.attempts - 1 : 0), std::to_string(result.tokens_input),
       std::to_string(result.tokens_output), core::format_micro_usd(outcome.cost_micro_usd),
       std::to_string(execution_time_ms), std::to_string(context.queue_time_ms), std::to_string(outcome.ai_time_ms),
       context.request_id, task_metadata(outcome, charges, context.prompt_stats_shared).dump(), std::to_string(context.started_at_ms),
       setting_or_null(settings::user_agent), setting_or_null(settings::client_ip), std::to_string(now_ms())};
  if (charges == Charges::InTransaction) {
    if (outcome.attempts > 0 && !context.batch_id) record.license_charge = context.license_id;
    // Served (a full license table sent the license's charge to the row): the keys are in
    // shared memory all the same.
    const int64_t at_ms = now_ms();
    if (!ledger::served()) {
      for (const auto& attempt : outcome.history)
        if (attempt.key_id && sent(attempt)) record.key_charges.push_back({*attempt.key_id, attempt.tokens, at_ms});
      if (context.prompt_id && !context.batch_id)
        record.prompt_stat = ledger::PromptStat{*context.prompt_id, execution_time_ms, outcome.result.ok};
      record.charges_at_commit = !context.batch_id;
    }
  }
  // Whatever the charges (a call whose connections were all refused is charged nothing, but
  // its key failed all the same).
  if (!context.key_health.empty() && !context.batch_id && !ledger::served()) {
    record.key_health = context.key_health;
    record.charges_at_commit = true;
  }
  return record;
}

}  // namespace

void keep_task_record(const TaskContext& context, const CallOutcome& outcome, long execution_time_ms,
                      Charges charges) {
  ledger::keep_until_transaction_end(task_record(context, outcome, execution_time_ms, charges));
}

std::string record_task(SpiSession& spi, const TaskContext& context, const CallOutcome& outcome,
                        long execution_time_ms, Charges charges) {
  // Kept before the INSERT: a cancel or terminate during it still hands the record on.
  const ledger::TaskRecord& kept =
      ledger::keep_until_transaction_end(task_record(context, outcome, execution_time_ms, charges));
  if (!kept.upsert) {
    if (spi.run_typed(insert_sql(), task_param_types(), kept.params).processed != 1)
      throw Error(ERRCODE_INTERNAL_ERROR, "celaest: recording the task inserted no row");
    return *kept.params.at(0);  // the task's id: always given (new_task_id)
  }
  QueryResult written = spi.run_typed(upsert_sql(), task_param_types(), kept.params);
  if (written.empty() || !written.at(0, 0)) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: recording the task returned no id");
  return *written.at(0, 0);
}

void TaskRows::add(const TaskContext& context, const CallOutcome& outcome, long execution_time_ms, Charges charges) {
  if (!context.task_id) throw Error(ERRCODE_INTERNAL_ERROR, "celaest: a batch task without its id");
  const ledger::TaskRecord& kept =
      ledger::keep_until_transaction_end(task_record(context, outcome, execution_time_ms, charges));
  rows_.push_back(kept.params);
}

namespace {

// The batch tasks' rows exist (queued by submit_batch, claimed since): one UPDATE joined to the
// recordset of every answer (columns p1..p29, text: kTaskInsert's parameters in its order),
// setting what kTaskUpsertTail sets, with the same casts. An UPDATE, not the upsert: the
// upsert's speculative insertion probes and locks each row once more before updating it.
// json_to_recordset, not jsonb_: it reads the text as it goes, where the jsonb cast first builds
// the whole document (a third more time for a group of 256 answers).
const std::string& multi_row_update_sql() {
  static const std::string sql = [] {
    std::string columns;
    for (int i = 1; i <= 29; ++i) columns += (i > 1 ? ", p" : "p") + std::to_string(i) + " text";
    return std::string(
               "UPDATE celaest.processed_tasks AS t SET"
               "  license_id = coalesce(r.p4::uuid, t.license_id), model_id = r.p6::uuid, api_key_id = r.p7::uuid,"
               "  input_text = r.p10, output_json = r.p12::jsonb, output_raw = r.p13,"
               "  status = r.p14::celaest.task_status, error_message = r.p15, error_code = r.p16,"
               "  retry_count = r.p17::int, tokens_input = r.p18::int, tokens_output = r.p19::int,"
               "  cost_usd = r.p20::numeric, execution_time_ms = r.p21::int, queue_time_ms = r.p22::int,"
               "  ai_time_ms = r.p23::int, request_id = coalesce(t.request_id, r.p24),"
               "  metadata = t.metadata || r.p25::jsonb, started_at = to_timestamp(r.p26::float8 / 1000),"
               "  completed_at = to_timestamp(r.p29::float8 / 1000)"
               " FROM json_to_recordset($1::json) AS r(") +
           columns + ") WHERE t.id = r.p1::uuid";
  }();
  return sql;
}

// Appends a text parameter to the group commit's JSON text as a JSON string (or null). A
// parameter is a C string (it ends at a NUL), and json_to_recordset cannot give \u0000 as text:
// the value is cut at its first NUL, as the one-row statement cuts it. Written straight into one
// buffer rather than built as a nlohmann object per row (29 keys: a map node and two strings
// each) and dumped.
void append_json_text(std::string& out, const Text& value) {
  if (!value) {
    out += "null";
    return;
  }
  std::string_view text(*value);
  text = text.substr(0, text.find('\0'));
  // Beyond ASCII, nlohmann's serializer: it replaces invalid UTF-8 as the whole-document dump did.
  if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  // Runs that need no escaping are appended whole.
  size_t plain_from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte != '"' && byte != '\\') continue;
    out.append(text.substr(plain_from, i - plain_from));
    plain_from = i + 1;
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    }
  }
  out.append(text.substr(plain_from));
  out += '"';
}

}  // namespace

void TaskRows::write(SpiSession& spi) {
  if (rows_.empty()) return;
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> names;
    for (int i = 1; i <= 29; ++i) names.push_back("\"p" + std::to_string(i) + "\":");
    return names;
  }();
  std::string rows;
  rows.reserve(rows_.size() * 1024);
  rows += '[';
  for (const std::vector<Text>& params : rows_) {
    rows += rows.size() > 1 ? ",{" : "{";
    for (size_t i = 0; i < params.size(); ++i) {
      if (i > 0) rows += ',';
      rows += i < keys.size() ? keys[i] : "\"p" + std::to_string(i + 1) + "\":";
      append_json_text(rows, params[i]);
    }
    rows += '}';
  }
  rows += ']';
  rows_.clear();
  spi.run(multi_row_update_sql(), {std::move(rows)});
}

namespace {

// The net effect of a sequence of health events on one key: a success resets the count and
// makes the key healthy; each failure after it counts, a definitive one (or reaching
// celaest.health_failure_threshold) makes the key unhealthy — as the events' own UPDATEs would.
struct HealthSummary {
  bool reset = false;
  int64_t failures = 0;
  bool definitive = false;
  void add(const ledger::KeyHealthEvent& event) {
    if (!event.failed) {
      *this = HealthSummary();
      reset = true;
      return;
    }
    ++failures;
    definitive = definitive || event.definitive;
  }
};

void apply_key_health(SpiSession& spi, const std::string& key_id, const HealthSummary& health) {
  if (health.failures == 0) {
    if (!health.reset) return;
    // Written only when something changes (a healthy key's row stays untouched).
    spi.run("UPDATE celaest.ai_api_pool SET consecutive_failures = 0, is_healthy = true"
            " WHERE id = $1::uuid AND (consecutive_failures <> 0 OR NOT is_healthy)",
            {key_id});
    return;
  }
  spi.run(
      "UPDATE celaest.ai_api_pool SET"
      "  consecutive_failures = CASE WHEN $2::boolean THEN 0 ELSE consecutive_failures END + $3::int,"
      "  is_healthy = ($2::boolean OR is_healthy) AND NOT $4::boolean"
      "               AND CASE WHEN $2::boolean THEN 0 ELSE consecutive_failures END + $3::int < $5::int"
      " WHERE id = $1::uuid",
      {key_id, std::string(health.reset ? "true" : "false"), std::to_string(health.failures),
       std::string(health.definitive ? "true" : "false"), std::to_string(settings::health_failure_threshold)});
}

}  // namespace

bool write_handed_on_record(SpiSession& spi, const ledger::TaskRecord& record, bool charge_now) {
  // Written once: the first write of a record wins, a second one (the writer crashed between
  // its commit and the file's removal) changes nothing and charges nothing.
  static const std::string insert_once = std::string(kTaskInsert) + " ON CONFLICT (id) DO NOTHING RETURNING id";
  QueryResult written = spi.run_typed(record.upsert ? upsert_sql() : insert_once, task_param_types(), record.params);
  if (written.empty() || !written.at(0, 0)) return false;
  if (!charge_now) return true;
  if (record.prompt_stat) {
    CallOutcome outcome;
    outcome.result.ok = record.prompt_stat->ok;
    update_prompt_statistics(spi, record.prompt_stat->prompt_id, outcome, static_cast<long>(record.prompt_stat->time_ms));
  }
  if (record.license_charge)
    spi.run("UPDATE celaest.licenses SET ai_requests_used = ai_requests_used + 1 WHERE id = $1::uuid",
            {*record.license_charge});
  for (const ledger::KeyCharge& charge : record.key_charges)
    spi.run("UPDATE celaest.ai_api_pool SET usage_count = usage_count + 1, tokens_used = tokens_used + $2::bigint,"
            "  last_used_at = greatest(last_used_at, to_timestamp($3::float8 / 1000)) WHERE id = $1::uuid",
            {charge.key_id, std::to_string(charge.tokens), std::to_string(charge.at_ms)});
  std::map<std::string, HealthSummary> health;
  for (const ledger::KeyHealthEvent& event : record.key_health) health[event.key_id].add(event);
  for (const auto& [key_id, summary] : health) apply_key_health(spi, key_id, summary);
  return true;
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

void charge_records_at_commit(const std::vector<const ledger::TaskRecord*>& records) {
  struct KeyTotal {
    int64_t requests = 0, tokens = 0, last_ms = 0;
    HealthSummary health;
  };
  struct PromptTotal {
    int64_t calls = 0, time_ms = 0, successes = 0;
  };
  std::map<std::string, std::vector<const ledger::TaskRecord*>> licenses;
  std::map<std::string, KeyTotal> keys;
  std::map<std::string, PromptTotal> prompts;
  for (const ledger::TaskRecord* record : records) {
    if (record->license_charge) licenses[*record->license_charge].push_back(record);
    for (const ledger::KeyCharge& charge : record->key_charges) {
      KeyTotal& total = keys[charge.key_id];
      ++total.requests;
      total.tokens += std::max<int64_t>(charge.tokens, 0);
      total.last_ms = std::max(total.last_ms, charge.at_ms);
    }
    for (const ledger::KeyHealthEvent& event : record->key_health) keys[event.key_id].health.add(event);
    if (record->prompt_stat) {
      PromptTotal& total = prompts[record->prompt_stat->prompt_id];
      ++total.calls;
      total.time_ms += record->prompt_stat->time_ms;
      total.successes += record->prompt_stat->ok ? 1 : 0;
    }
  }
  SpiSession spi;
  for (const auto& [license_id, charged] : licenses) {
    // The call was paid: charged whatever the room (admission already counted it in flight).
    // No license_usage_log row per call (API.md): the period's close sums the counter.
    spi.run("UPDATE celaest.licenses SET ai_requests_used = ai_requests_used + $2::bigint WHERE id = $1::uuid",
            {license_id, std::to_string(charged.size())});
  }
  // Usage and health of each key in id order (its row held from the first through the commit).
  for (const auto& [key_id, total] : keys) {
    if (total.requests > 0)
      spi.run("UPDATE celaest.ai_api_pool SET usage_count = usage_count + $2::bigint, tokens_used = tokens_used +"
              " $3::bigint, last_used_at = greatest(last_used_at, to_timestamp($4::float8 / 1000)) WHERE id = $1::uuid",
              {key_id, std::to_string(total.requests), std::to_string(total.tokens), std::to_string(total.last_ms)});
    apply_key_health(spi, key_id, total.health);
  }
  for (const auto& [prompt_id, total] : prompts)
    spi.run(
        "UPDATE celaest.prompts_master SET usage_count = usage_count + $2::bigint,"
        "  avg_response_time_ms = ((coalesce(avg_response_time_ms, 0)::numeric * usage_count + $3::bigint)"
        "                          / (usage_count + $2::bigint))::int,"
        "  success_rate = round((coalesce(success_rate, 0) * usage_count + $4::bigint * 100)"
        "                       / (usage_count + $2::bigint), 2)"
        " WHERE id = $1::uuid",
        {prompt_id, std::to_string(total.calls), std::to_string(total.time_ms), std::to_string(total.successes)});
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

uintptr_t call_result_jsonb(const std::string& task_id, const CallOutcome& outcome, long execution_time_ms) {
  // The fields of call_result(), in its order; every text outlives build().
  const core::ChatResult& result = outcome.result;
  const std::string status = task_status(outcome);
  const std::string provider = outcome.model ? std::string(core::provider_name(outcome.model->provider)) : std::string();
  nlohmann::json output_json;
  if (outcome.output_json) output_json = nlohmann::json::parse(*outcome.output_json);
  JsonbBuilder jsonb;
  auto text_or_null = [&](const char* key, bool present, const std::string& text) {
    jsonb.key(key);
    if (present)
      jsonb.string(text);
    else
      jsonb.null();
  };
  jsonb.begin_object();
  text_or_null("task_id", true, task_id);
  text_or_null("status", true, status);
  text_or_null("output_text", result.ok || !result.text.empty(), result.text);
  jsonb.key("output_json");
  jsonb.json(output_json);
  text_or_null("provider", outcome.model.has_value(), provider);
  text_or_null("model", outcome.model.has_value(), outcome.model ? outcome.model->model_id : provider);
  jsonb.key("tokens_input");
  jsonb.integer(result.tokens_input);
  jsonb.key("tokens_output");
  jsonb.integer(result.tokens_output);
  jsonb.key("cost_usd");
  jsonb.number(static_cast<double>(outcome.cost_micro_usd) / 1e6);
  jsonb.key("execution_time_ms");
  jsonb.integer(execution_time_ms);
  jsonb.key("ai_time_ms");
  jsonb.integer(outcome.ai_time_ms);
  jsonb.key("retry_count");
  jsonb.integer(outcome.attempts > 0 ? outcome.attempts - 1 : 0);
  text_or_null("error_code", !result.ok && !result.error_code.empty(), result.error_code);
  text_or_null("error_message", !result.ok && !result.error_message.empty(), result.error_message);
  text_or_null("finish_reason", !result.finish_reason.empty(), result.finish_reason);
  text_or_null("request_id", !result.request_id.empty(), result.request_id);
  jsonb.end_object();
  if (jsonb.buildable()) return jsonb.build();
  return jsonb_from_json(call_result(task_id, outcome, execution_time_ms));  // fails as it always did
}

}  // namespace celaest::pg
