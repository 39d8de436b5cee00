#include "pg/boundary/check_constraint_cache.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/tupdesc.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteManip.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

#include <cstring>

namespace celaest::pg::check_constraint_cache {

namespace {

// What a copy holds: a relation's CHECK constraints, in the order of its relcache entry
// (ExecRelCheck's), or one row trigger's WHEN condition (TriggerEnabled's).
enum class Kind { Checks, TriggerWhen };

// One copy. Everything is plain data in `context` (a child of CacheMemoryContext): this file's
// code runs in the PostgreSQL zone only (boundary.hpp), where nothing may throw.
struct RelationChecks {
  Kind kind = Kind::Checks;
  Oid key = InvalidOid;    // the relation (Checks) or the trigger (TriggerWhen)
  Oid relid = InvalidOid;  // whose invalidation makes it stale
  MemoryContext context = nullptr;
  int count = 0;
  char** texts = nullptr;         // the stored text (ccbin, tgqual) each state was compiled from
  ExprState** states = nullptr;   // nullptr: that constraint is compiled per statement
  bool stale = true;
};

// celaest's statements write a handful of tables; more copies than this are left to PostgreSQL.
constexpr int kMaxRelations = 32;
RelationChecks relations[kMaxRelations];
int relation_count = 0;

bool armed = false;
ExecutorStart_hook_type previous_executor_start = nullptr;

// True when the expression holds a node outside the plain set (expression_tree_walker stops
// at the first true). A hashed IN list and a whole-row Var keep what they build at their first
// evaluation in the statement's memory, so they are not plain either.
bool not_plain(Node* node, void* context) {
  if (node == nullptr) return false;
  switch (nodeTag(node)) {
    case T_Var:
      // A whole-row Var (to_jsonb(OLD) in the audit triggers' WHEN) keeps the row's descriptor
      // in the statement's memory at its first evaluation; system columns are left out too.
      if (reinterpret_cast<Var*>(node)->varattno <= 0) return true;
      break;
    case T_Const:
    case T_OpExpr:
    case T_FuncExpr:
    case T_BoolExpr:
    case T_NullTest:
    case T_BooleanTest:
    case T_RelabelType:
    case T_CoerceViaIO:
    case T_CaseExpr:
    case T_CaseWhen:
    case T_CaseTestExpr:
    case T_CoalesceExpr:
    case T_MinMaxExpr:
    case T_NullIfExpr:
    case T_DistinctExpr:
    case T_ArrayExpr:
    case T_List:
      break;
    case T_ScalarArrayOpExpr:
      if (OidIsValid(reinterpret_cast<ScalarArrayOpExpr*>(node)->hashfuncid)) return true;
      break;
    default:
      return true;
  }
  // PostgreSQL 15 declares the walker as an unprototyped function pointer (through void (*)()
  // so that the cast is an intended one, not a mismatch the compiler should warn about).
  return expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(not_plain)), context);
}

// The stored texts a copy must have been compiled from: the relation's CHECK constraints, or
// the trigger's WHEN condition.
struct Source {
  Kind kind;
  Oid key;
  int count;
  const ConstrCheck* checks;  // Checks
  const char* qual;           // TriggerWhen
  const char* text(int i) const { return kind == Kind::Checks ? checks[i].ccbin : qual; }
};

bool matches(const RelationChecks& entry, const Source& source) {
  if (entry.stale || entry.count != source.count) return false;
  for (int i = 0; i < entry.count; ++i)
    if (std::strcmp(entry.texts[i], source.text(i)) != 0) return false;
  return true;
}

bool keepable(Node* expression) { return !not_plain(expression, nullptr) && !contain_volatile_functions(expression); }

// A WHEN condition as TriggerEnabled compiles it: OLD and NEW become the inner and outer
// tuple, in implicit-AND form (nullptr when it is not kept: compiled per statement).
List* when_condition(const char* qual) {
  Node* condition = static_cast<Node*>(stringToNode(qual));
  ChangeVarNodes(condition, PRS2_OLD_VARNO, INNER_VAR, 0);
  ChangeVarNodes(condition, PRS2_NEW_VARNO, OUTER_VAR, 0);
  return make_ands_implicit(reinterpret_cast<Expr*>(condition));
}

// A running statement may still evaluate the old states (an invalidation can arrive while it
// runs, and a nested celaest statement may rebuild the entry): they are freed with the
// transaction, not now.
void retire(RelationChecks* entry) {
  if (entry->context != nullptr) MemoryContextSetParent(entry->context, TopTransactionContext);
  entry->context = nullptr;
  entry->count = 0;
  entry->texts = nullptr;
  entry->states = nullptr;
}

void build(RelationChecks* entry, const Source& source) {
  entry->stale = true;
  // Built under the statement's memory, kept only once complete: an ERROR half-way frees it.
  MemoryContext context = AllocSetContextCreate(CurrentMemoryContext, "celaest CHECK constraints", ALLOCSET_SMALL_SIZES);
  MemoryContext previous = MemoryContextSwitchTo(context);
  const int count = source.count;
  char** texts = static_cast<char**>(palloc(count * sizeof(char*)));
  ExprState** states = static_cast<ExprState**>(palloc0(count * sizeof(ExprState*)));
  for (int i = 0; i < count; ++i) {
    texts[i] = pstrdup(source.text(i));
    // What ExecPrepareExpr / ExecPrepareQual do (ExecRelCheck's and TriggerEnabled's own
    // compilation), without a parent plan.
    if (source.kind == Kind::Checks) {
      Expr* expression = expression_planner(static_cast<Expr*>(stringToNode(texts[i])));
      if (keepable(reinterpret_cast<Node*>(expression))) states[i] = ExecInitExpr(expression, nullptr);
    } else {
      Expr* condition = expression_planner(reinterpret_cast<Expr*>(when_condition(texts[i])));
      if (keepable(reinterpret_cast<Node*>(condition))) states[i] = ExecInitQual(reinterpret_cast<List*>(condition), nullptr);
    }
  }
  MemoryContextSwitchTo(previous);
  retire(entry);
  MemoryContextSetParent(context, CacheMemoryContext);
  entry->context = context;
  entry->count = count;
  entry->texts = texts;
  entry->states = states;
  entry->stale = false;
}

RelationChecks* current_copy(Relation relation, const Source& source) {
  RelationChecks* entry = nullptr;
  for (int i = 0; i < relation_count; ++i)
    if (relations[i].kind == source.kind && relations[i].key == source.key) entry = &relations[i];
  if (entry != nullptr && matches(*entry, source)) return entry;
  if (entry == nullptr) {
    if (relation_count == kMaxRelations) return nullptr;
    entry = &relations[relation_count++];
    entry->kind = source.kind;
    entry->key = source.key;
    entry->relid = RelationGetRelid(relation);
  }
  build(entry, source);
  return entry;
}

// Each result relation of the statement whose CHECK constraints are not compiled yet gets the
// session's states (a constraint that is not kept is compiled here, as ExecRelCheck would), and
// so does each of its row triggers' WHEN conditions (one not kept is left to TriggerEnabled).
void fill(EState* estate) {
  ListCell* cell;
  foreach (cell, estate->es_opened_result_relations) {
    ResultRelInfo* info = static_cast<ResultRelInfo*>(lfirst(cell));
    Relation relation = info->ri_RelationDesc;
    const TupleConstr* constr = relation->rd_att->constr;
    if (info->ri_ConstraintExprs == nullptr && constr != nullptr && constr->num_check > 0) {
      if (RelationChecks* entry = current_copy(relation, {Kind::Checks, RelationGetRelid(relation), constr->num_check, constr->check, nullptr})) {
        MemoryContext previous = MemoryContextSwitchTo(estate->es_query_cxt);
        ExprState** exprs = static_cast<ExprState**>(palloc(entry->count * sizeof(ExprState*)));
        for (int i = 0; i < entry->count; ++i)
          exprs[i] = entry->states[i] != nullptr ? entry->states[i]
                                                 : ExecPrepareExpr(static_cast<Expr*>(stringToNode(entry->texts[i])), estate);
        MemoryContextSwitchTo(previous);
        info->ri_ConstraintExprs = exprs;
      }
    }
    const TriggerDesc* triggers = info->ri_TrigDesc;
    if (triggers == nullptr || info->ri_TrigWhenExprs == nullptr) continue;
    for (int i = 0; i < triggers->numtriggers; ++i) {
      const Trigger& trigger = triggers->triggers[i];
      if (trigger.tgqual == nullptr || info->ri_TrigWhenExprs[i] != nullptr) continue;
      RelationChecks* entry = current_copy(relation, {Kind::TriggerWhen, trigger.tgoid, 1, nullptr, trigger.tgqual});
      if (entry != nullptr && entry->states[0] != nullptr) info->ri_TrigWhenExprs[i] = entry->states[0];
    }
  }
}

void on_executor_start(QueryDesc* query, int eflags) noexcept {
  const bool ours = armed;
  armed = false;
  // PostgreSQL's own start first, called as PostgreSQL calls it (an ERROR leaves from here as
  // from standard_ExecutorStart).
  if (previous_executor_start != nullptr)
    previous_executor_start(query, eflags);
  else
    standard_ExecutorStart(query, eflags);
  if (!ours || (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0 || query->estate == nullptr) return;
  run_entry_point("CHECK constraint cache", OnFailure::RaiseError, [&] { pg_guarded([&] { fill(query->estate); }); });
}

// A relation's definition changed (or every relation's: InvalidOid), or a function did: the
// copies are rebuilt at their next use. Only flags here: an invalidation may arrive while a
// statement evaluates them.
void on_relation_change(Datum, Oid relid) noexcept {
  for (int i = 0; i < relation_count; ++i)
    if (relid == InvalidOid || relations[i].relid == relid) relations[i].stale = true;
}
void on_function_change(Datum, int, uint32) noexcept {
  for (int i = 0; i < relation_count; ++i) relations[i].stale = true;
}

}  // namespace

void install() {
  pg_guarded([] {
    CacheRegisterRelcacheCallback(on_relation_change, (Datum)0);
    CacheRegisterSyscacheCallback(PROCOID, on_function_change, (Datum)0);
  });
  previous_executor_start = ExecutorStart_hook;
  ExecutorStart_hook = on_executor_start;
}

void arm_next_statement() noexcept { armed = true; }
void disarm() noexcept { armed = false; }

}  // namespace celaest::pg::check_constraint_cache
