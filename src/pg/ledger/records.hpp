// The ledger's task records (README "The ledger"): a paid call's processed_tasks row is
// written in the caller's transaction, and also kept here, in backend memory, until that
// transaction ends. When it commits, the row committed with it and the copy is dropped; when it
// does not (rollback, an error later on, a cancel, pg_terminate_backend, an aborted
// subtransaction around the call), the transaction-end callback hands the copy on:
//
//   * served database (a ledger writer runs there): to the spool directory
//     ($PGDATA/celaest_ledger), one file per record, and wakes the writer, which writes it in
//     a transaction of its own (writer.cpp) — within a second, usually within milliseconds;
//   * otherwise: to this backend's pending list, written by its next AI call (in that call's
//     transaction, and handed on again if that one does not commit either); what is still
//     pending when the backend exits goes to the spool, where the next AI call of any backend of
//     the database (its first call) or a writer finds it.
//
// Writing a record is idempotent (the task id is fixed before the first INSERT): a record
// written twice (a crash between the writer's commit and the file's removal) is one row.
#pragma once

#include "pg/boundary/spi.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace celaest::pg::ledger {

struct KeyCharge {
  std::string key_id;
  int64_t tokens = 0;
  int64_t at_ms = 0;
};

// A prompt's running statistics for one call (prompts_master: usage, average time, success).
struct PromptStat {
  std::string prompt_id;
  int64_t time_ms = 0;
  bool ok = false;
};

// A key health event of an AI call in an unserved database (a failure, definitive for 401/403/
// an invalid key, or a success that resets the count), made at commit with the other charges
// so that the call holds no key row past its statement (README "The ledger").
struct KeyHealthEvent {
  std::string key_id;
  bool failed = false;
  bool definitive = false;
};

struct TaskRecord {
  bool upsert = false;       // a batch task: its row exists and is completed by the record
  std::vector<Text> params;  // the task statement's parameters (task_record.cpp); [0] = task id
  // Charges made in the caller's transaction, to redo with the row when it did not commit:
  // unserved databases only (a served one charges shared memory, outside any transaction).
  std::optional<std::string> license_charge;  // one AI request of this license
  std::vector<KeyCharge> key_charges;
  std::optional<PromptStat> prompt_stat;
  std::vector<KeyHealthEvent> key_health;  // in the order the call learned them
  // Unserved: the charges are made at commit (below), not in the statement. False for a batch
  // task, whose run charged its keys in its transaction (they matter only if that aborts).
  // Not spooled: the backend that writes a handed-on record sets it.
  bool charges_at_commit = false;
  // Unserved: the spool file this record was read from by this backend (not spooled). The file
  // is removed when the transaction that wrote the record commits; if it does not, the record
  // is dropped, not handed on again — the file is still there and is read again — so that a
  // rolled-back reader never multiplies the spool.
  std::string spool_path;
  bool has_charges() const { return license_charge || !key_charges.empty() || prompt_stat || !key_health.empty(); }
};

// Unserved databases: the charges of the records kept in a transaction that is committing are
// made then (XACT_EVENT_PRE_COMMIT), not during the calls, so that no call holds a license, key
// or prompt row past its own statement — only through its commit (README "The ledger",
// "Unserved databases"). The charger (task_record.cpp) writes them; an error aborts the commit.
using CommitCharger = void (*)(const std::vector<const TaskRecord*>& records);
void set_commit_charger(CommitCharger charger);

// From _PG_init: the transaction and subtransaction callbacks, and the exit hook.
void register_callbacks();

// Keeps `record` until the current (sub)transaction ends. Call it before the INSERT: a cancel
// during the INSERT still hands the record on.
// Returns the kept copy (valid until the next record is kept).
const TaskRecord& keep_until_transaction_end(TaskRecord record);

// Unserved databases: the records this backend must write now (see above). Each is kept
// again (keep_until_transaction_end) by the caller once written.
std::vector<TaskRecord> take_pending();
// Whether the spool may hold records for this backend to write (unserved: its first call, and
// the call after a transaction that read it did not commit).
bool spool_check_due();

// The spool, for the writer (and an unserved backend's first call).
struct Spooled {
  std::string path;
  TaskRecord record;
};
std::vector<Spooled> read_spool(uint32_t database, size_t at_most);
// Removes the file once the current transaction has committed (kept if it aborts).
void remove_at_commit(const std::string& path);
// A record that cannot be written (e.g. its organization was deleted): renamed *.failed and
// logged, so that it does not block the others.
void set_aside(const std::string& path, const std::string& error);
// Records in the spool of `database` (for _ledger_state()).
int64_t spooled_count(uint32_t database);
// The launcher: removes the spool's files (records, files set aside, temporary ones) of every
// database not among `databases` (the cluster's, just read); returns how many.
size_t remove_spool_of_databases_not_in(const uint32_t* databases, size_t count);

// JSON form of a record (the spool's file content).
std::string to_json(const TaskRecord& record);
TaskRecord from_json(const std::string& text);

}  // namespace celaest::pg::ledger
