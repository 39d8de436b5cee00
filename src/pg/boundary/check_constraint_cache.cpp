#include "pg/boundary/check_constraint_cache.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/tupdesc.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

#include <cstring>

namespace celaest::pg::check_constraint_cache {

namespace {

// One relation's compiled constraints, in the order of its relcache entry (ExecRelCheck's).
// Everything is plain data in `context` (a child of CacheMemoryContext): this file's code runs
// in the PostgreSQL zone only (boundary.hpp), where nothing may throw.
struct RelationChecks {
  Oid relid = InvalidOid;
  MemoryContext context = nullptr;
  int count = 0;
  char** texts = nullptr;         // the stored text (ccbin) each state was compiled from
  ExprState** states = nullptr;   // nullptr: that constraint is compiled per statement
  bool stale = true;
};

// celaest's statements write a handful of tables; more than this are left to PostgreSQL.
constexpr int kMaxRelations = 16;
RelationChecks relations[kMaxRelations];
int relation_count = 0;

bool armed = false;
ExecutorStart_hook_type previous_executor_start = nullptr;

// True when the expression holds a node outside the plain set (expression_tree_walker stops
// at the first true). A hashed IN list builds its hash table in the statement's memory at its
// first evaluation, so it is not plain either.
bool not_plain(Node* node, void* context) {
  if (node == nullptr) return false;
  switch (nodeTag(node)) {
    case T_Var:
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

bool matches(const RelationChecks& entry, const TupleConstr* constr) {
  if (entry.stale || entry.count != constr->num_check) return false;
  for (int i = 0; i < entry.count; ++i)
    if (std::strcmp(entry.texts[i], constr->check[i].ccbin) != 0) return false;
  return true;
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

void build(RelationChecks* entry, Relation relation) {
  const TupleConstr* constr = relation->rd_att->constr;
  entry->stale = true;
  // Built under the statement's memory, kept only once complete: an ERROR half-way frees it.
  MemoryContext context = AllocSetContextCreate(CurrentMemoryContext, "celaest CHECK constraints", ALLOCSET_SMALL_SIZES);
  MemoryContext previous = MemoryContextSwitchTo(context);
  const int count = constr->num_check;
  char** texts = static_cast<char**>(palloc(count * sizeof(char*)));
  ExprState** states = static_cast<ExprState**>(palloc0(count * sizeof(ExprState*)));
  for (int i = 0; i < count; ++i) {
    texts[i] = pstrdup(constr->check[i].ccbin);
    // What ExecPrepareExpr does (ExecRelCheck's own compilation), without a parent plan.
    Expr* expression = expression_planner(static_cast<Expr*>(stringToNode(texts[i])));
    if (!not_plain(reinterpret_cast<Node*>(expression), nullptr) &&
        !contain_volatile_functions(reinterpret_cast<Node*>(expression)))
      states[i] = ExecInitExpr(expression, nullptr);
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

RelationChecks* current_copy(Relation relation) {
  RelationChecks* entry = nullptr;
  for (int i = 0; i < relation_count; ++i)
    if (relations[i].relid == RelationGetRelid(relation)) entry = &relations[i];
  if (entry != nullptr && matches(*entry, relation->rd_att->constr)) return entry;
  if (entry == nullptr) {
    if (relation_count == kMaxRelations) return nullptr;
    entry = &relations[relation_count++];
    entry->relid = RelationGetRelid(relation);
  }
  build(entry, relation);
  return entry;
}

// Each result relation of the statement whose CHECK constraints are not compiled yet gets the
// session's states (a constraint that is not kept is compiled here, as ExecRelCheck would).
void fill(EState* estate) {
  ListCell* cell;
  foreach (cell, estate->es_opened_result_relations) {
    ResultRelInfo* info = static_cast<ResultRelInfo*>(lfirst(cell));
    Relation relation = info->ri_RelationDesc;
    const TupleConstr* constr = relation->rd_att->constr;
    if (info->ri_ConstraintExprs != nullptr || constr == nullptr || constr->num_check == 0) continue;
    RelationChecks* entry = current_copy(relation);
    if (entry == nullptr) continue;
    MemoryContext previous = MemoryContextSwitchTo(estate->es_query_cxt);
    ExprState** exprs = static_cast<ExprState**>(palloc(entry->count * sizeof(ExprState*)));
    for (int i = 0; i < entry->count; ++i)
      exprs[i] = entry->states[i] != nullptr ? entry->states[i]
                                             : ExecPrepareExpr(static_cast<Expr*>(stringToNode(entry->texts[i])), estate);
    MemoryContextSwitchTo(previous);
    info->ri_ConstraintExprs = exprs;
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
