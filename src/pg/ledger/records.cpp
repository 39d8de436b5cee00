#include <nlohmann/json.hpp>

#include "pg/ledger/records.hpp"

#include "pg/ledger/counters.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/workers/registry.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/snapmgr.h"
}

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace celaest::pg::ledger {

namespace {

struct Kept {
  TaskRecord record;
  int level;     // the (sub)transaction nesting level that wrote it
  Oid charge_as;  // the user the call ran as (its functions are SECURITY DEFINER): charges at commit
};

std::vector<Kept>& kept() {
  static std::vector<Kept> records;
  return records;
}
std::vector<TaskRecord>& pending() {
  static std::vector<TaskRecord> records;
  return records;
}
std::vector<std::string>& files_to_remove() {
  static std::vector<std::string> paths;
  return paths;
}

std::string spool_directory() { return std::string(DataDir) + "/celaest_ledger"; }

// A transaction that read records from the spool did not commit: their files are still there,
// so the backend's next call reads the spool again.
bool spool_recheck = false;

// The records of `entries` that came from the spool are dropped (their files stay); the others
// are returned, to be handed on.
template <typename Entries>
std::vector<TaskRecord> not_from_the_spool(Entries&& entries) {
  std::vector<TaskRecord> records;
  for (auto& entry : entries) {
    if (!entry.record.spool_path.empty()) {
      spool_recheck = true;
      continue;
    }
    records.push_back(std::move(entry.record));
  }
  return records;
}

// One file per record, written whole under a temporary name and then renamed: a reader never
// sees half a record.
void spool(const TaskRecord& record) {
  static uint64_t sequence = 0;
  const std::string directory = spool_directory();
  (void)mkdir(directory.c_str(), S_IRWXU);
  const std::string name = std::to_string(MyDatabaseId) + "." + std::to_string(now_ms()) + "." +
                           std::to_string(MyProcPid) + "." + std::to_string(++sequence);
  const std::string temporary = directory + "/" + name + ".tmp";
  const std::string final_path = directory + "/" + name + ".rec";
  const std::string body = to_json(record);
  FILE* file = std::fopen(temporary.c_str(), "w");
  bool written = file != nullptr && std::fwrite(body.data(), 1, body.size(), file) == body.size();
  if (file != nullptr) written = (std::fclose(file) == 0) && written;
  if (!written || std::rename(temporary.c_str(), final_path.c_str()) != 0) {
    const int error = errno;
    (void)std::remove(temporary.c_str());
    throw Error(ERRCODE_IO_ERROR, "celaest: could not hand a task record to the ledger spool " + final_path + ": " +
                                      strerror(error));
  }
}

// Records whose transaction did not commit.
void hand_on(std::vector<TaskRecord> records) {
  if (records.empty()) return;
  if (served() || proc_exit_inprogress) {
    for (const TaskRecord& record : records) spool(record);
    if (served()) workers::wake_worker(workers::Role::LedgerWriter);
    return;
  }
  for (TaskRecord& record : records) pending().push_back(std::move(record));
}

CommitCharger commit_charger = nullptr;

void at_transaction_end(XactEvent event, void*) noexcept {
  run_entry_point("ledger records", on_failure_at(event), [&] {
    switch (event) {
      case XACT_EVENT_PRE_COMMIT:
      case XACT_EVENT_PRE_PREPARE: {
        if (commit_charger == nullptr || kept().empty() || served()) return;
        std::vector<const TaskRecord*> charged;
        Oid charge_as = InvalidOid;
        for (const Kept& entry : kept())
          if (entry.record.charges_at_commit && entry.record.has_charges()) {
            charged.push_back(&entry.record);
            charge_as = entry.charge_as;
          }
        if (charged.empty()) return;
        // As the user the calls ran as, like their own statements; an error aborts the commit,
        // and AbortTransaction restores the user.
        Oid user = InvalidOid;
        int context = 0;
        pg_guarded([&] {
          GetUserIdAndSecContext(&user, &context);
          SetUserIdAndSecContext(charge_as, context | SECURITY_LOCAL_USERID_CHANGE);
          PushActiveSnapshot(GetTransactionSnapshot());  // no statement is running any more
        });
        commit_charger(charged);
        pg_guarded([&] {
          PopActiveSnapshot();
          SetUserIdAndSecContext(user, context);
        });
        return;
      }
      case XACT_EVENT_COMMIT:
      case XACT_EVENT_PARALLEL_COMMIT:
      case XACT_EVENT_PREPARE:
        // Committed with the transaction (a prepared one: with COMMIT PREPARED; README); the
        // spool files of the records it wrote go.
        for (const Kept& entry : kept())
          if (!entry.record.spool_path.empty()) (void)unlink(entry.record.spool_path.c_str());
        kept().clear();
        for (const std::string& path : files_to_remove()) (void)unlink(path.c_str());
        files_to_remove().clear();
        return;
      case XACT_EVENT_ABORT:
      case XACT_EVENT_PARALLEL_ABORT: {
        files_to_remove().clear();
        if (kept().empty()) return;
        std::vector<TaskRecord> records = not_from_the_spool(kept());
        kept().clear();
        hand_on(std::move(records));
        return;
      }
      default:
        return;
    }
  });
}

void at_subtransaction_end(SubXactEvent event, SubTransactionId, SubTransactionId, void*) noexcept {
  run_entry_point("ledger records (subtransaction)", OnFailure::Warn, [&] {
    if (kept().empty()) return;
    const int level = GetCurrentTransactionNestLevel();
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
      for (Kept& entry : kept())
        if (entry.level >= level) entry.level = level - 1;
    } else if (event == SUBXACT_EVENT_ABORT_SUB) {
      std::vector<Kept> aborted;
      auto& all = kept();
      for (auto it = all.begin(); it != all.end();) {
        if (it->level >= level) {
          aborted.push_back(std::move(*it));
          it = all.erase(it);
        } else {
          ++it;
        }
      }
      hand_on(not_from_the_spool(aborted));
    }
  });
}

// An unserved backend's records still pending at exit go to the spool.
void at_exit(int, Datum) noexcept {
  run_entry_point("ledger records at exit", OnFailure::Warn, [&] {
    for (const TaskRecord& record : pending()) spool(record);
    pending().clear();
  });
}

}  // namespace

void set_commit_charger(CommitCharger charger) { commit_charger = charger; }

void register_callbacks() {
  RegisterXactCallback(at_transaction_end, nullptr);
  RegisterSubXactCallback(at_subtransaction_end, nullptr);
}

const TaskRecord& keep_until_transaction_end(TaskRecord record) {
  static bool exit_hook = false;
  if (!exit_hook) {
    // After every before_shmem_exit callback, so after ShutdownPostgres aborted an open
    // transaction (which hands its records to pending()).
    pg_guarded([] { on_shmem_exit(at_exit, (Datum)0); });
    exit_hook = true;
  }
  kept().push_back({std::move(record), pg_guarded([] { return GetCurrentTransactionNestLevel(); }),
                    pg_guarded([] { return GetUserId(); })});
  return kept().back().record;
}

std::vector<TaskRecord> take_pending() {
  std::vector<TaskRecord> records;
  records.swap(pending());
  return records;
}

bool spool_check_due() {
  static bool checked = false;
  if (checked && !spool_recheck) return false;
  checked = true;
  spool_recheck = false;
  return true;
}

std::vector<Spooled> read_spool(uint32_t database, size_t at_most) {
  std::vector<std::string> names;
  const std::string directory = spool_directory();
  const std::string prefix = std::to_string(database) + ".";
  if (DIR* dir = opendir(directory.c_str())) {
    while (struct dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name.compare(0, prefix.size(), prefix) == 0 && name.size() > 4 &&
          name.compare(name.size() - 4, 4, ".rec") == 0)
        names.push_back(name);
    }
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  if (names.size() > at_most) names.resize(at_most);
  std::vector<Spooled> spooled;
  for (const std::string& name : names) {
    const std::string path = directory + "/" + name;
    std::ifstream file(path);
    if (!file) continue;  // taken by another reader meanwhile
    std::stringstream body;
    body << file.rdbuf();
    try {
      spooled.push_back({path, from_json(body.str())});
    } catch (const nlohmann::json::exception& error) {
      set_aside(path, error.what());
    }
  }
  return spooled;
}

void remove_at_commit(const std::string& path) { files_to_remove().push_back(path); }

void set_aside(const std::string& path, const std::string& error) {
  const std::string failed = path + ".failed";
  (void)std::rename(path.c_str(), failed.c_str());
  pg_guarded([&] {
    ereport(WARNING, (errmsg("celaest: ledger record %s could not be written and was set aside", failed.c_str()),
                      errdetail("%s", error.c_str())));
  });
}

int64_t spooled_count(uint32_t database) {
  int64_t count = 0;
  const std::string prefix = std::to_string(database) + ".";
  if (DIR* dir = opendir(spool_directory().c_str())) {
    while (struct dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name.compare(0, prefix.size(), prefix) == 0 && name.size() > 4 &&
          name.compare(name.size() - 4, 4, ".rec") == 0)
        ++count;
    }
    closedir(dir);
  }
  return count;
}

size_t remove_spool_of_databases_not_in(const uint32_t* databases, size_t count) {
  const std::vector<uint32_t> known(databases, databases + count);
  size_t removed = 0;
  const std::string directory = spool_directory();
  if (DIR* dir = opendir(directory.c_str())) {
    while (struct dirent* entry = readdir(dir)) {
      // <database oid>.<ms>.<pid>.<n>.rec (or .tmp, .rec.failed)
      const std::string name = entry->d_name;
      const size_t dot = name.find('.');
      if (dot == 0 || dot == std::string::npos ||
          name.find_first_not_of("0123456789") != dot)
        continue;
      const uint32_t database = static_cast<uint32_t>(std::strtoul(name.substr(0, dot).c_str(), nullptr, 10));
      if (std::find(known.begin(), known.end(), database) != known.end()) continue;
      if (unlink((directory + "/" + name).c_str()) == 0) ++removed;
    }
    closedir(dir);
  }
  return removed;
}

std::string to_json(const TaskRecord& record) {
  nlohmann::json params = nlohmann::json::array();
  for (const Text& value : record.params) params.push_back(value ? nlohmann::json(*value) : nlohmann::json());
  nlohmann::json keys = nlohmann::json::array();
  for (const KeyCharge& charge : record.key_charges) keys.push_back({charge.key_id, charge.tokens, charge.at_ms});
  nlohmann::json health = nlohmann::json::array();
  for (const KeyHealthEvent& event : record.key_health) health.push_back({event.key_id, event.failed, event.definitive});
  return nlohmann::json{{"upsert", record.upsert},
                        {"health", health},
                        {"params", params},
                        {"license", record.license_charge ? nlohmann::json(*record.license_charge) : nlohmann::json()},
                        {"keys", keys},
                        {"prompt", record.prompt_stat ? nlohmann::json{record.prompt_stat->prompt_id,
                                                                         record.prompt_stat->time_ms,
                                                                         record.prompt_stat->ok}
                                                      : nlohmann::json()}}
      .dump();
}

TaskRecord from_json(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text);
  TaskRecord record;
  record.upsert = json.at("upsert").get<bool>();
  for (const auto& value : json.at("params"))
    record.params.push_back(value.is_null() ? Text() : Text(value.get<std::string>()));
  if (!json.at("license").is_null()) record.license_charge = json.at("license").get<std::string>();
  for (const auto& key : json.at("keys"))
    record.key_charges.push_back({key.at(0).get<std::string>(), key.at(1).get<int64_t>(), key.at(2).get<int64_t>()});
  // Files spooled before prompt statistics were part of a record have no "prompt".
  if (json.contains("prompt") && !json.at("prompt").is_null()) {
    const nlohmann::json& prompt = json.at("prompt");
    record.prompt_stat = PromptStat{prompt.at(0).get<std::string>(), prompt.at(1).get<int64_t>(),
                                    prompt.at(2).get<bool>()};
  }
  // Files spooled before key health events were part of a record have no "health".
  if (json.contains("health"))
    for (const auto& event : json.at("health"))
      record.key_health.push_back({event.at(0).get<std::string>(), event.at(1).get<bool>(), event.at(2).get<bool>()});
  return record;
}

}  // namespace celaest::pg::ledger
