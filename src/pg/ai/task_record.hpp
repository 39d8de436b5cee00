// Recording a finished call: the processed_tasks row (every telemetry column), the prompt's
// running statistics, and the jsonb result returned to the caller (API.md run_prompt).
#pragma once

#include <nlohmann/json.hpp>

#include "pg/ai/call_runner.hpp"
#include "pg/boundary/spi.hpp"
#include "pg/ledger/records.hpp"

#include <optional>
#include <string>
#include <vector>

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
  // A batch task put back in the queue after a crash (retry_after_crash): its first call may
  // have been sent and billed, so its reserved AI request stays charged whatever happens now.
  bool interrupted = false;
  // An unserved database's AI call: the key health events it learned (KeyHealth::AtCommit),
  // made with its record's other charges at commit.
  std::vector<ledger::KeyHealthEvent> key_health;
  // A served run_prompt call whose prompt statistics went to the ledger's shared memory: marked
  // on the row (metadata.prompt_stats = 'shared') for the rebuild after a crash.
  bool prompt_stats_shared = false;
};

// How the call's charges were made, for the ledger (README "The ledger").
enum class Charges {
  Shared,         // license and keys in the ledger's shared memory (a served database)
  KeysShared,     // keys in shared memory; the license was charged beforehand (a batch task)
  InTransaction,  // in the caller's transaction (an unserved database): redone with the row
                  // if that transaction does not commit
  None,           // nothing reached a provider
};

// Whether some request of the call went out to a provider (not refused by the outbound guard,
// not lost to a refused connection): what a license is charged for (API.md "The ledger").
bool reached_a_provider(const CallOutcome& outcome);

// metadata.attempts of a task: every request the call sent (or the guard refused), in order.
nlohmann::json attempts_json(const CallOutcome& outcome);

// Inserts (or, for a batch task, completes) the processed_tasks row; returns its id. The row's
// record is kept by the ledger first (ledger/records.hpp): it is written whatever becomes of
// the caller's transaction.
std::string record_task(SpiSession& spi, const TaskContext& context, const CallOutcome& outcome,
                        long execution_time_ms, Charges charges = Charges::KeysShared);
// Batch tasks (their rows exist: context.task_id is set): the rows of the tasks a transaction
// ends, written by one multi-row UPDATE instead of one upsert per task (the per-statement
// executor set-up, constraint and trigger preparation were most of a task's recording). Each
// record is kept by the ledger when it is added, exactly as record_task keeps it, so a
// transaction that fails still hands every one on (the writer upserts it).
class TaskRows {
 public:
  void add(const TaskContext& context, const CallOutcome& outcome, long execution_time_ms, Charges charges);
  // One statement for every row added since the last write; nothing when none was.
  void write(SpiSession& spi);
  void clear() { rows_.clear(); }

 private:
  std::vector<std::vector<Text>> rows_;
};
// The same record kept by the ledger without writing the row: for a call ended by an error
// after it sent requests (the transaction is failing; the record is written when it aborts).
void keep_task_record(const TaskContext& context, const CallOutcome& outcome, long execution_time_ms,
                      Charges charges);
// Writes a record handed on by the ledger (its transaction did not commit): the row if it is
// not there yet and, only then, the charges it carries. Returns whether it wrote the row.
// `now`: the charges are made in the current statement (the ledger writer's own transaction);
// otherwise they stay with the record, which the caller keeps, and are made at commit
// (charge_records_at_commit).
bool write_handed_on_record(SpiSession& spi, const ledger::TaskRecord& record, bool charge_now = true);
// Unserved databases, at XACT_EVENT_PRE_COMMIT (ledger::set_commit_charger): the charges of the
// committing transaction's records — license (with its license_usage_log rows), keys, prompts —
// one short UPDATE per row, in the order of their ids (two committing backends never deadlock).
void charge_records_at_commit(const std::vector<const ledger::TaskRecord*>& records);
// usage_count, avg_response_time_ms and success_rate of the prompt, kept as running values.
void update_prompt_statistics(SpiSession& spi, const std::string& prompt_id, const CallOutcome& outcome,
                              long execution_time_ms);
// The caller's jsonb result.
nlohmann::json call_result(const std::string& task_id, const CallOutcome& outcome, long execution_time_ms);
// The same document as jsonb (a Datum), built directly (pg/boundary/jsonb_build.hpp).
uintptr_t call_result_jsonb(const std::string& task_id, const CallOutcome& outcome, long execution_time_ms);
// "completed" or "failed".
const char* task_status(const CallOutcome& outcome);

}  // namespace celaest::pg
