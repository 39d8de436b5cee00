#include "pg/boundary/snapshot_horizon.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "nodes/plannodes.h"
#include "nodes/primnodes.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
}

namespace celaest::pg::snapshot_horizon {

namespace {

// A call of `function` whose arguments are constants or parameters: evaluating it reads
// nothing with the statement's snapshot before or after the function runs.
bool is_constant_call_of(const Node* expression, Oid function) {
  if (expression == nullptr || !IsA(expression, FuncExpr)) return false;
  const FuncExpr* call = reinterpret_cast<const FuncExpr*>(expression);
  if (call->funcid != function) return false;
  const ListCell* cell = nullptr;
  foreach (cell, call->args) {
    const Node* argument = static_cast<const Node*>(lfirst(cell));
    if (!IsA(argument, Const) && !IsA(argument, Param)) return false;
  }
  return true;
}

bool plan_is_only_a_call_of(const PlannedStmt* statement, Oid function) {
  if (statement->commandType != CMD_SELECT || statement->subplans != NIL || statement->rowMarks != NIL) return false;
  const Plan* plan = statement->planTree;
  if (plan == nullptr || plan->lefttree != nullptr || plan->righttree != nullptr || plan->initPlan != NIL ||
      plan->qual != NIL)
    return false;
  if (IsA(plan, Result)) {
    // SELECT f(…): one output column, the call.
    if (reinterpret_cast<const Result*>(plan)->resconstantqual != nullptr || list_length(plan->targetlist) != 1)
      return false;
    return is_constant_call_of(reinterpret_cast<const Node*>(linitial_node(TargetEntry, plan->targetlist)->expr),
                               function);
  }
  if (IsA(plan, FunctionScan)) {
    // SELECT * FROM f(…): one function, its output projected as is.
    const FunctionScan* scan = reinterpret_cast<const FunctionScan*>(plan);
    if (list_length(scan->functions) != 1) return false;
    const ListCell* cell = nullptr;
    foreach (cell, plan->targetlist)
      if (!IsA(lfirst_node(TargetEntry, cell)->expr, Var)) return false;
    return is_constant_call_of(linitial_node(RangeTblFunction, scan->functions)->funcexpr, function);
  }
  return false;
}

}  // namespace

bool statement_is_only_a_call_of(Oid function) {
  return pg_guarded([function] {
    // REPEATABLE READ and SERIALIZABLE keep the transaction's snapshot for later statements;
    // an open cursor (a READY portal) reads with its own.
    if (IsolationUsesXactSnapshot() || ActivePortal == nullptr || !ThereAreNoReadyPortals()) return false;
    if (list_length(ActivePortal->stmts) != 1) return false;
    const Node* statement = static_cast<const Node*>(linitial(ActivePortal->stmts));
    // Called from another function (PL/pgSQL, SQL) or in a larger query: that one may read on.
    return IsA(statement, PlannedStmt) &&
           plan_is_only_a_call_of(reinterpret_cast<const PlannedStmt*>(statement), function);
  });
}

void release_while_waiting() {
  pg_guarded([] {
    // The catalog snapshot is registered too; the statement's own is left registered (the
    // portal unregisters it at its end) but no longer advertised: the next snapshot taken (the
    // function's next look) advertises its own xmin again.
    InvalidateCatalogSnapshot();
    MyProc->xmin = InvalidTransactionId;
  });
}

}  // namespace celaest::pg::snapshot_horizon
