// Core and HTTP headers come first: they refuse to compile after postgres.h.
#include <nlohmann/json.hpp>

#include "core/call_plan.hpp"
#include "http/transfer_stream.hpp"

#include "pg/workers/stream_runner.hpp"

#include "pg/ai/batch_task.hpp"
#include "pg/ai/call_runner.hpp"
#include "pg/ai/key_health.hpp"
#include "pg/ai/routing.hpp"
#include "pg/ai/routing_catalog.hpp"
#include "pg/ledger/counters.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/descriptors.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/spi.hpp"
#include "pg/boundary/wall_clock.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/snapmgr.h"
}

#include <algorithm>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

namespace celaest::pg::workers {

namespace {

// Appends one element to a text[] literal: quoted, its quotes and backslashes escaped.
void append_array_text(std::string& array, const std::string& text, bool comma) {
  if (comma) array += ',';
  array += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') array += '\\';
    array += c;
  }
  array += '"';
}

// Tasks claimed per transaction: the first requests leave while the next ones are claimed.
constexpr size_t kClaimChunk = 128;
// A busy runner refills once this many slots (or a quarter of its limit) are free.
constexpr size_t kMinRefill = 32;
// A batch's counters (task_batches) are refreshed at most this often while the runner still
// holds tasks of it, and at once when it holds none any more (the batch may have ended).
// _refresh_batch counts every task of the batch: for 20,000 tasks that is ~18 ms, and at 100 ms
// it took an eighth of the runner's time; batch_status() counts the tasks itself, so only the
// batch row's counters trail, by at most this long.
constexpr int64_t kRefreshBatchesMs = 1000;
// The longest a round waits on the network: bounds how late a wake-up, a cancel_batch or a
// due retry is noticed while transfers are in flight.
constexpr int kDriveMs = 10;
// Group commit: answers are recorded together once this many have come, or the oldest has
// waited this long, or nothing else is in flight.
constexpr size_t kGroupSize = 256;
constexpr int64_t kGroupWindowMs = 5;
// A task with no room in any key's windows looks again after this long (pacing).
constexpr int64_t kPacingRetryMs = 100;
// How often the batches of tasks in flight are checked for cancel_batch.
constexpr int64_t kCancelCheckMs = 100;
// Pending tasks are looked for at least this often without a wake-up (a COMMIT PREPARED, an
// organization's max_concurrent_tasks freed by another session).
constexpr int64_t kClaimPollMs = 1000;
// Plans live across transactions; the pool objects their key picks and answers go through are
// those of the transaction at hand.
class CurrentKeys final : public core::KeySource {
 public:
  core::KeySource* target = nullptr;
  std::optional<core::KeyChoice> pick(const core::ModelChoice& model, const std::set<std::string>& excluded) override {
    if (target == nullptr) throw std::logic_error("batch runner: a key was picked outside a transaction");
    return target->pick(model, excluded);
  }
};

class CurrentLedger final : public core::KeyLedger {
 public:
  core::KeyLedger* target = nullptr;
  void record(const std::string& key, const core::KeyOutcome& outcome) override {
    if (target == nullptr) throw std::logic_error("batch runner: a key outcome came outside a transaction");
    target->record(key, outcome);
  }
};

struct Task {
  TaskContext context;
  CallInput input;                        // kept: a paced task is planned again
  std::unique_ptr<core::CallPlan> plan;   // null while paced
  // The call's requests before its plan was dropped to wait for a key's cool-down (a 429 with
  // Retry-After): the next plan continues from them, so its attempts and the keys' usage keep them.
  std::optional<CallOutcome> earlier;
  std::optional<http::Request> to_send;   // picked in this transaction, sent after its commit
  bool on_wire = false;
  bool reached_provider = false;          // some request of it went out: its charge stays
  bool wire_noted = false;                // to_send's key is written on the task's row
  int64_t not_before_ms = 0;              // waiting (back-off or pacing) until then
};

// Runs `work` in a transaction of its own (committed, or rolled back when it throws).
template <typename Work>
void in_transaction(const char* activity, Work&& work) {
  pg_guarded([activity] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, activity);
  });
  try {
    {
      SpiSession spi;
      work(spi);
    }
    pg_guarded([] {
      PopActiveSnapshot();
      CommitTransactionCommand();
      pgstat_report_activity(STATE_IDLE, nullptr);
    });
  } catch (...) {
    pg_guarded([] {
      AbortCurrentTransaction();
      pgstat_report_activity(STATE_IDLE, nullptr);
    });
    throw;
  }
}

}  // namespace

struct BatchStream::Impl {
  http::TransferStream stream{[] { return interrupt_pending(); }};
  CurrentKeys keys;
  CurrentLedger ledger;
  std::unordered_map<uint64_t, Task> tasks;  // claimed and not yet recorded, by transfer tag
  uint64_t next_tag = 1;
  std::vector<http::TransferStream::Ended> arrived;  // answers not yet recorded
  int64_t first_arrival_ms = 0;
  std::vector<uint64_t> to_send;
  bool claim_wanted = true;
  int64_t next_claim_poll_ms = 0;
  int64_t next_cancel_check_ms = 0;
  size_t sockets = socket_budget();  // the open-files limit raised to the hard one

  size_t limit() const { return std::min(static_cast<size_t>(std::max(1, settings::worker_concurrency)), sockets); }
  size_t free_slots() const { return tasks.size() >= limit() ? 0 : limit() - tasks.size(); }
  // Refills come in groups: each claim pays a fixed price (it reads the queue in order), so a
  // full runner waits for a few free slots rather than claiming them one at a time.
  bool claim_due() const {
    if (!claim_wanted) return false;
    const size_t free = free_slots();
    if (free == 0) return false;
    return tasks.empty() || free >= std::max<size_t>(1, std::min(kMinRefill, limit() / 4));
  }

  bool waiting_task_due(int64_t now) const {
    for (const auto& [tag, task] : tasks)
      if (!task.on_wire && !task.to_send && task.not_before_ms <= now) return true;
    return false;
  }
  int64_t earliest_wait(int64_t now) const {
    int64_t earliest = -1;
    for (const auto& [tag, task] : tasks)
      if (!task.on_wire) earliest = earliest < 0 ? task.not_before_ms : std::min(earliest, task.not_before_ms);
    return earliest < 0 ? -1 : std::max<int64_t>(0, earliest - now);
  }
  bool transaction_due(int64_t now) const {
    if (!arrived.empty() && (arrived.size() >= kGroupSize || stream.in_flight() == 0 ||
                             now - first_arrival_ms >= kGroupWindowMs))
      return true;
    if (claim_due()) return true;
    if (!stale_batches.empty() && now >= next_refresh_ms) return true;
    if (!tasks.empty() && now >= next_cancel_check_ms) return true;
    return waiting_task_due(now);
  }

  long round();
  void drive(int wait_ms);
  void transact(bool claim_only);
  void record_arrivals(SpiSession& spi, Router& router, std::set<std::string>& touched);
  void abort_cancelled(SpiSession& spi, KeyHealth& health, std::set<std::string>& touched);
  void resume_waiting(SpiSession& spi, Router& router, std::set<std::string>& touched);
  void claim(SpiSession& spi, Router& router, std::set<std::string>& touched);
  void advance(SpiSession& spi, Router& router, uint64_t tag, std::set<std::string>& touched);
  bool has_room_later(SpiSession& spi, Router& router, const Task& task);
  std::optional<int64_t> wait_for_room(SpiSession& spi, Router& router, const Task& task);
  void refresh_batches(SpiSession& spi, const std::set<std::string>& touched);
  void send();
  void note_on_wire(SpiSession& spi);
  void fail_everything(const std::string& why);

  std::set<std::string> stale_batches;  // counters not refreshed since their tasks moved
  BatchEndings endings;                 // what this transaction's task ends owe shared rows
  int64_t next_refresh_ms = 0;
};

// _refresh_batch counts every task of the batch: for a batch of thousands, done on every group
// commit it would cost more than the commit. batch_status() counts the tasks itself, so only the
// batch row's counters wait; its end is written as soon as this runner holds none of its tasks.
void BatchStream::Impl::refresh_batches(SpiSession& spi, const std::set<std::string>& touched) {
  stale_batches.insert(touched.begin(), touched.end());
  if (stale_batches.empty()) return;
  const int64_t now = now_ms();
  std::set<std::string> held;
  for (const auto& [tag, task] : tasks)
    if (task.context.batch_id) held.insert(*task.context.batch_id);
  std::vector<std::string> due;
  for (const std::string& batch : stale_batches)
    if (now >= next_refresh_ms || !held.count(batch)) due.push_back(batch);
  if (due.empty()) return;
  spi.run("SELECT count(celaest._refresh_batch(b)) FROM unnest($1::uuid[]) AS b", {uuid_array(due)});
  for (const std::string& batch : due) stale_batches.erase(batch);
  if (now >= next_refresh_ms) next_refresh_ms = now + kRefreshBatchesMs;
}

void BatchStream::Impl::drive(int wait_ms) {
  if (stream.in_flight() == 0) return;
  const size_t before = arrived.size();
  stream.drive(wait_ms, arrived);
  // A terminate aborted the transfers: leave now. Their tasks stay in processing, and recovery
  // marks them interrupted (the calls may have been sent).
  check_for_interrupts();
  if (before == 0 && !arrived.empty()) first_arrival_ms = now_ms();
  // A task whose answer came stays on_wire until the answer is recorded (record_arrivals):
  // a claim's transaction in between must not move its call on (resume_waiting), which would
  // send its request again before the plan has seen the answer.
}

long BatchStream::Impl::round() {
  if (MyLatch->is_set) {
    pg_guarded([] { ResetLatch(MyLatch); });
    claim_wanted = true;
  }
  int64_t now = now_ms();
  if (now >= next_claim_poll_ms) {
    claim_wanted = true;
    next_claim_poll_ms = now + kClaimPollMs;
  }
  drive(transaction_due(now) ? 0 : kDriveMs);
  now = now_ms();
  if (transaction_due(now)) {
    try {
      // Requests first: a claim due while answers wait is committed (and its requests sent)
      // before the answers are recorded, so new work is on the wire while the group commit runs.
      if (claim_due() && !arrived.empty()) {
        transact(true);
        send();
      }
      transact(false);
    } catch (const PgError& error) {
      if (error.ends_the_statement()) throw;
      fail_everything(error.message());
    } catch (const Error& error) {
      fail_everything(error.message());
    } catch (const std::exception& error) {
      fail_everything(error.what());
    }
    send();
  }
  if (stream.in_flight() > 0 || !arrived.empty()) return 0;
  if (claim_due()) return 0;
  return static_cast<long>(earliest_wait(now_ms()));
}

void BatchStream::Impl::transact(bool claim_only) {
  in_transaction("celaest batch runner: recording and claiming", [&](SpiSession& spi) {
    Router router(spi);
    KeyHealth health(spi, ledger::served() ? KeyHealth::Writes::Ledger : KeyHealth::Writes::Rows);
    std::unique_ptr<core::KeySource> pool_keys = routed_keys(router);
    std::unique_ptr<core::KeyLedger> pool = pool_ledger(health);
    keys.target = pool_keys.get();
    ledger.target = pool.get();
    endings.clear();  // anything left is of a transaction that did not commit
    struct Unbind {
      Impl& impl;
      ~Unbind() {
        impl.keys.target = nullptr;
        impl.ledger.target = nullptr;
      }
    } unbind{*this};
    std::set<std::string> touched;  // batches whose counters move
    const size_t answers = claim_only ? 0 : arrived.size();
    const int64_t t0 = now_ms();
    if (!claim_only) record_arrivals(spi, router, touched);
    const int64_t t1 = now_ms();
    if (!claim_only) abort_cancelled(spi, health, touched);
    resume_waiting(spi, router, touched);
    const int64_t t2 = now_ms();
    const size_t before = tasks.size();
    claim(spi, router, touched);
    const int64_t t3 = now_ms();
    note_on_wire(spi);
    endings.flush(spi);  // reservations given back and prompt statistics, once per transaction
    refresh_batches(spi, touched);
    const int64_t t4 = now_ms();
    // Where a round's time goes (log_min_messages = debug1): the benchmark's first question.
    const size_t claimed = tasks.size() - std::min(before, tasks.size());
    pg_guarded([&] {
      if (message_level_is_interesting(DEBUG1))
        ereport(DEBUG1, (errmsg("celaest batch runner: %zu answers recorded in %ld ms, waiting tasks %ld ms, %zu "
                                "tasks claimed in %ld ms, batches refreshed in %ld ms, %zu in flight",
                                answers, static_cast<long>(t1 - t0), static_cast<long>(t2 - t1), claimed,
                                static_cast<long>(t3 - t2), static_cast<long>(t4 - t3), stream.in_flight())));
    });
  });
}

void BatchStream::Impl::record_arrivals(SpiSession& spi, Router& router, std::set<std::string>& touched) {
  std::vector<http::TransferStream::Ended> answers = std::move(arrived);
  arrived.clear();
  for (auto& answer : answers) {
    auto found = tasks.find(answer.tag);
    if (found == tasks.end()) continue;  // cancelled meanwhile
    found->second.on_wire = false;
    found->second.plan->on_response(answer.response);
    advance(spi, router, answer.tag, touched);
  }
}

// cancel_batch (API.md): the batch's tasks still here are stopped. An answer that already came
// was recorded above (kept and charged); a transfer on the wire is aborted and its task ends
// cancelled, still charged (the provider may have billed the call); a task that never reached a
// provider gives its request back.
void BatchStream::Impl::abort_cancelled(SpiSession& spi, KeyHealth& health, std::set<std::string>& touched) {
  const int64_t now = now_ms();
  if (tasks.empty() || now < next_cancel_check_ms) return;
  next_cancel_check_ms = now + kCancelCheckMs;
  std::set<std::string> batch_ids;
  for (const auto& [tag, task] : tasks)
    if (task.context.batch_id) batch_ids.insert(*task.context.batch_id);
  QueryResult cancelled = spi.run(
      "SELECT id FROM celaest.task_batches WHERE id = ANY($1::uuid[]) AND status = 'cancelled'",
      {uuid_array(std::vector<std::string>(batch_ids.begin(), batch_ids.end()))}, true);
  if (cancelled.empty()) return;
  std::set<std::string> stopped;
  for (const Row& row : cancelled.rows) stopped.insert(*row[0]);
  for (auto it = tasks.begin(); it != tasks.end();) {
    Task& task = it->second;
    if (!task.context.batch_id || !stopped.count(*task.context.batch_id)) {
      ++it;
      continue;
    }
    // The books (README "The ledger"): the requests the call sent stay recorded on the task, and
    // the one on the wire, which the provider received, is an interrupted attempt counted once in
    // its key's usage, as the crash recovery counts one.
    nlohmann::json attempts = task.plan     ? attempts_json(task.plan->outcome())
                              : task.earlier ? attempts_json(*task.earlier)
                                             : nlohmann::json::array();
    nlohmann::json interrupted = nlohmann::json::array();
    if (task.on_wire) {
      stream.cancel(it->first);
      if (std::optional<std::string> key = task.plan->current_key_id()) {
        interrupted.push_back({{"api_key_id", *key}, {"model", task.plan->current_model_id()},
                               {"outcome", "cancelled"}, {"tokens", 0}});
        health.record_use(*key, 0);
      }
    }
    const bool charged = task.reached_provider || task.on_wire;
    spi.run(
        // cancel_batch() has usually ended the row already (its time stays); an answer recorded
        // first stays completed.
        "UPDATE celaest.processed_tasks SET status = 'cancelled',"
        "  completed_at = COALESCE(completed_at, clock_timestamp()), error_code = 'cancelled', error_message = $2,"
        "  execution_time_ms = (extract(epoch FROM COALESCE(completed_at, clock_timestamp()) - started_at) * 1000)::int,"
        "  metadata = metadata || jsonb_build_object('attempts', $3::jsonb,"
        "    'interrupted_attempts', COALESCE(metadata->'interrupted_attempts', '[]'::jsonb) || $4::jsonb)"
        "    || CASE WHEN $5::boolean THEN jsonb_build_object('ledger', COALESCE(metadata->>'ledger', 'keys'))"
        "            ELSE '{}'::jsonb END"
        " WHERE id = $1::uuid AND status IN ('processing', 'cancelled')",
        {task.context.task_id,
         std::string(charged ? "cancelled by cancel_batch() while its provider call was in flight"
                             : "cancelled by cancel_batch() before its provider call was sent"),
         attempts.dump(), interrupted.dump(), std::string(ledger::served() ? "true" : "false")});
    if (!charged && !task.context.interrupted) endings.return_reservation(task.context.license_id);
    touched.insert(*task.context.batch_id);
    it = tasks.erase(it);
    claim_wanted = true;
  }
}

void BatchStream::Impl::resume_waiting(SpiSession& spi, Router& router, std::set<std::string>& touched) {
  const int64_t now = now_ms();
  std::vector<uint64_t> due;
  for (const auto& [tag, task] : tasks)
    if (!task.on_wire && !task.to_send && task.not_before_ms <= now) due.push_back(tag);
  std::sort(due.begin(), due.end());  // claim order: the oldest waiter first
  for (uint64_t tag : due) {
    Task& task = tasks.at(tag);
    if (!task.plan) {
      try {
        task.plan = std::make_unique<core::CallPlan>(
            router.candidate_models(task.input.options, task.input.preferred_model_id), task.input, call_limits(),
            core::CallServices{keys, ledger, [] { return now_ms(); }, [] { return random_unit(); }});
        if (task.earlier) task.plan->continue_from(*task.earlier, task.context.started_at_ms);
      } catch (const Error& error) {  // its model was deactivated meanwhile
        // The requests of its earlier plans stay on it (and in their keys' usage).
        CallOutcome outcome = task.earlier ? *task.earlier : CallOutcome{};
        outcome.result = core::ChatResult{};
        outcome.result.error_code = "no_usable_model";
        outcome.result.error_message = error.message();
        record_batch_task(spi, task.context, outcome, true, endings);
        if (task.context.batch_id) touched.insert(*task.context.batch_id);
        tasks.erase(tag);
        continue;
      }
    }
    advance(spi, router, tag, touched);
    // Still no room: the ones behind it (claimed later) would not find any either; they look
    // again with it.
    auto still = tasks.find(tag);
    if (still != tasks.end() && !still->second.plan) {
      for (uint64_t later : due) {
        auto behind = tasks.find(later);
        if (later > tag && behind != tasks.end() && !behind->second.plan)
          behind->second.not_before_ms = still->second.not_before_ms;
      }
      break;
    }
  }
}

void BatchStream::Impl::claim(SpiSession& spi, Router& router, std::set<std::string>& touched) {
  if (!claim_due()) return;
  const size_t wanted = std::min(free_slots(), kClaimChunk);
  if (wanted == 0) return;
  // The claim stamps started_at with clock_timestamp(): what it claimed is what started since.
  Text since = spi.scalar("SELECT clock_timestamp()::text");
  Text count = spi.scalar("SELECT celaest._claim_batch_tasks($1::int)", {std::to_string(wanted)});
  const size_t claimed = count ? std::stoul(*count) : 0;
  // Fewer than asked: the queue is empty (or blocked) for now; a wake-up or the poll says when
  // to look again.
  if (claimed < wanted) claim_wanted = false;
  if (claimed == 0) return;
  PreparationCache cache;
  for (ClaimedTask& claimed_task : load_claimed_tasks(spi, router, cache, since)) {
    if (!claimed_task.input) {
      CallOutcome outcome;
      outcome.result.error_code = claimed_task.error_code;
      outcome.result.error_message = claimed_task.error_message;
      record_batch_task(spi, claimed_task.context, outcome, false, endings);
      if (claimed_task.context.batch_id) touched.insert(*claimed_task.context.batch_id);
      continue;
    }
    const uint64_t tag = next_tag++;
    Task& task = tasks[tag];
    task.context = std::move(claimed_task.context);
    task.input = std::move(*claimed_task.input);
    task.not_before_ms = 0;  // planned by resume_waiting below, in claim order
    if (task.context.batch_id) touched.insert(*task.context.batch_id);
  }
  resume_waiting(spi, router, touched);
}

// Whether one of the task's models has a usable key (active, healthy, unexpired) that may only
// lack room in its rate windows or be cooling down.
bool BatchStream::Impl::has_room_later(SpiSession& spi, Router& router, const Task& task) {
  std::vector<core::ModelChoice> models;
  try {
    models = router.candidate_models(task.input.options, task.input.preferred_model_id);
  } catch (const Error&) {
    return false;
  }
  const std::shared_ptr<const RoutingCatalog> catalog = routing_catalog(spi);
  const int64_t now = now_ms();
  for (const core::ModelChoice& model : models)
    for (const PoolKey& key : catalog->keys)
      if (key.provider == model.provider && key.active_and_healthy &&
          (!key.expires_at_ms || *key.expires_at_ms > now))
        return true;
  return false;
}

// Pacing, not failing (issue 12 §3): how long a task whose plan ended waits before it is planned
// again, or nothing when it ends now. It waits
//  - when this plan sent nothing (no key had room in its windows, or every key was cooling
//    down) while a usable key exists: it looks again in kPacingRetryMs;
//  - when the call ended on a retryable 429 with Retry-After (its retries spent while the key cooled
//    down): the key's cool-down, then the call goes on with a new plan, its earlier attempts
//    kept (Task::earlier). Bounded by the call's timeout_ms and by kMaxAttemptsPerCall over
//    all its plans, so a provider that never stops answering 429 cannot hold a task for ever.
std::optional<int64_t> BatchStream::Impl::wait_for_room(SpiSession& spi, Router& router, const Task& task) {
  const CallOutcome& outcome = task.plan->outcome();
  const int earlier_attempts = task.earlier ? task.earlier->attempts : 0;
  const bool earlier_blocked = task.earlier && task.earlier->blocked;
  const std::optional<long>& timeout = task.input.options.timeout_ms;
  // A call that already reached a provider ends at its timeout_ms, waiting or not.
  if (task.earlier && timeout && now_ms() >= task.context.started_at_ms + *timeout) return std::nullopt;
  if (outcome.attempts == earlier_attempts && outcome.blocked == earlier_blocked)
    return has_room_later(spi, router, task) ? std::optional<int64_t>(kPacingRetryMs) : std::nullopt;
  const core::ChatResult& result = outcome.result;
  // A spent daily quota (not retryable) ends the task as a call would end; its RetryInfo delay
  // is no promise of room (the key cools down until the quota resets).
  if (result.ok || result.failure != core::FailureKind::RateLimited || !result.retryable || !result.retry_after_ms)
    return std::nullopt;
  if (outcome.attempts >= core::kMaxAttemptsPerCall) return std::nullopt;
  if (timeout && now_ms() + *result.retry_after_ms >= task.context.started_at_ms + *timeout) return std::nullopt;
  if (!has_room_later(spi, router, task)) return std::nullopt;
  return std::max<int64_t>(kPacingRetryMs, *result.retry_after_ms);
}

// Moves a task's call on: its next request (sent after the commit), a wait (back-off or
// pacing), or its end (recorded now).
void BatchStream::Impl::advance(SpiSession& spi, Router& router, uint64_t tag, std::set<std::string>& touched) {
  Task& task = tasks.at(tag);
  http::Request request;
  if (task.plan->next_request(request)) {
    task.to_send = std::move(request);
    task.wire_noted = false;
    to_send.push_back(tag);
    return;
  }
  if (!task.plan->finished()) {
    task.not_before_ms = now_ms() + std::max(1L, task.plan->backoff_ms());
    return;
  }
  if (const std::optional<int64_t> wait = wait_for_room(spi, router, task)) {
    task.earlier = task.plan->outcome();
    task.plan.reset();
    task.not_before_ms = now_ms() + *wait;
    return;
  }
  CallOutcome outcome = task.plan->outcome();
  record_batch_task(spi, task.context, outcome, true, endings);
  if (task.context.batch_id) touched.insert(*task.context.batch_id);
  tasks.erase(tag);
  // Its organization may have been at max_concurrent_tasks: its queued tasks may go now.
  claim_wanted = true;
}

// A request is about to leave with a key: a note of it (task, key, model) is written in the
// transaction that picked it, before it is sent (celaest._batch_on_wire). If the runner dies
// while the request is out, the orphan's recovery counts that request in the key's usage
// (_recover_orphaned_tasks): the provider saw it. Notes of ended tasks are cleared by that same
// recovery pass, once a second.
void BatchStream::Impl::note_on_wire(SpiSession& spi) {
  // Three typed arrays rather than a JSON document of objects: nothing to build per note but
  // the strings, and PostgreSQL reads each array once.
  std::vector<std::string> task_ids, key_ids;
  std::string models = "{";
  for (uint64_t tag : to_send) {
    auto found = tasks.find(tag);
    if (found == tasks.end() || !found->second.to_send || found->second.wire_noted) continue;
    Task& task = found->second;
    task.wire_noted = true;
    std::optional<std::string> key = task.plan->current_key_id();
    if (!key || !task.context.task_id) continue;  // a keyless endpoint counts no key
    task_ids.push_back(*task.context.task_id);
    key_ids.push_back(std::move(*key));
    append_array_text(models, task.plan->current_model_id(), task_ids.size() > 1);
  }
  if (task_ids.empty()) return;
  models += '}';
  // A narrow table without indexes: one multi-row INSERT, no new version of the task's wide row
  // (which, not HOT on a full page, cost ten index entries a request).
  spi.run(
      "INSERT INTO celaest._batch_on_wire (task_id, api_key_id, model)"
      " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[])",
      {uuid_array(task_ids), uuid_array(key_ids), models});
}

void BatchStream::Impl::send() {
  for (uint64_t tag : to_send) {
    auto found = tasks.find(tag);
    if (found == tasks.end() || !found->second.to_send) continue;
    Task& task = found->second;
    task.on_wire = true;
    task.reached_provider = true;
    stream.start(tag, std::move(*task.to_send));
    task.to_send.reset();
  }
  to_send.clear();
}

// A round's transaction failed as a whole (a bug, or the database refused something): its
// tasks must not stay in processing for ever. Every task this runner holds ends failed
// (runner_error). Those that never reached a provider give back the AI request submit_batch
// reserved for them (API.md: one unit per call that reached a provider), in the transaction
// that ends them and only for the rows it moves out of processing, so a unit goes back once.
void BatchStream::Impl::fail_everything(const std::string& why) {
  pg_guarded([&why] { ereport(LOG, (errmsg("celaest batch runner: %s", why.c_str()))); });
  endings.clear();  // rolled back with the transaction: those tasks did not end there
  std::vector<std::string> unsent;
  for (const auto& [tag, task] : tasks) {
    if (task.on_wire) stream.cancel(tag);
    if (!task.reached_provider && !task.context.interrupted && task.context.task_id)
      unsent.push_back(*task.context.task_id);
  }
  tasks.clear();
  arrived.clear();
  to_send.clear();
  try {
    in_transaction("celaest batch runner: failing its tasks", [&unsent](SpiSession& spi) {
      QueryResult failed = spi.run(
          "UPDATE celaest.processed_tasks SET status = 'failed', "
          "  completed_at = clock_timestamp(), error_code = 'runner_error', "
          "  error_message = 'the batch runner failed while running this task (see the server log)' "
          "  WHERE status = 'processing' AND metadata->>'claimed_by' = pg_backend_pid()::text "
          "  RETURNING id::text, batch_id::text, license_id::text");
      const std::set<std::string> never_sent(unsent.begin(), unsent.end());
      std::vector<std::string> returned;
      std::set<std::string> batches;
      for (const Row& row : failed.rows) {
        if (row[1]) batches.insert(*row[1]);
        if (row[0] && row[2] && never_sent.count(*row[0])) returned.push_back(*row[2]);
      }
      if (!returned.empty()) spi.run("SELECT celaest._return_batch_reservations($1::uuid[])", {uuid_array(returned)});
      if (!batches.empty())
        spi.run("SELECT count(celaest._refresh_batch(b)) FROM unnest($1::uuid[]) AS b",
                {uuid_array(std::vector<std::string>(batches.begin(), batches.end()))});
    });
  } catch (const PgError& error) {
    // The schema is gone (DROP EXTENSION): the worker's next unit notices and leaves.
    if (error.ends_the_statement()) throw;
    pg_guarded([&error] { ereport(LOG, (errmsg("celaest batch runner: %s", error.message()))); });
  }
}

BatchStream::BatchStream() : impl_(std::make_unique<Impl>()) {}
BatchStream::~BatchStream() = default;

long BatchStream::round() { return impl_->round(); }

void BatchStream::woken() { impl_->claim_wanted = true; }

}  // namespace celaest::pg::workers
