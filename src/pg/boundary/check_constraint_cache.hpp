// CHECK constraints of the tables celaest's own statements write, compiled once per session.
//
// PostgreSQL reads a table's CHECK constraints back from their stored text (stringToNode),
// plans and compiles them again in every statement that inserts or updates a row: for
// processed_tasks (10 CHECKs) that was 0.19 M instructions of an ai_chat call, more than the
// row's five foreign-key checks. This keeps the compiled expressions per relation for the
// session and hands them to the statements celaest runs through SpiSession (an ExecutorStart
// hook fills ResultRelInfo.ri_ConstraintExprs, which ExecRelCheck would otherwise build), so
// every constraint is still checked on every row, by the same expression.
//
// A copy is used only while it is the relation's current definition: each use compares the
// stored text of every constraint with the copy's (a changed, added or dropped constraint
// rebuilds it), and a relcache or pg_proc invalidation rebuilds it too. Only expressions made
// of plain nodes (columns, constants, operators, functions, boolean and null tests, CASE,
// COALESCE, ...) whose functions are not volatile are kept; any other constraint is compiled
// per statement as PostgreSQL does (some expression steps keep state in the statement's
// memory, and a volatile function could write the table while its check is evaluated).
// Statements not run by celaest (a user's own INSERT, a trigger's) are left to PostgreSQL.
#pragma once

namespace celaest::pg::check_constraint_cache {

// From _PG_init: the ExecutorStart hook and the invalidation callbacks.
void install();

// The next statement this backend starts is celaest's (SpiSession, right before executing a
// plan): its result relations get the session's copies. The hook disarms it; so does disarm(),
// after the plan ran or failed (a plan that starts no executor must not pass it on).
void arm_next_statement() noexcept;
void disarm() noexcept;

}  // namespace celaest::pg::check_constraint_cache
