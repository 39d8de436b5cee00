#!/usr/bin/env python3
"""Copies a function's current definition from src/sql into the upgrade script.

    scripts/dev/upgrade_body.py sql/celaest--0.1.0--0.2.0.sql celaest._claim_batch_tasks

The upgrade script holds `CREATE OR REPLACE FUNCTION` for every body that changed since the
last release (test/upgrade checks that an upgraded database equals a fresh install). When a
body changes again, this replaces the script's last copy (the one that counts) with the one
in src/sql. A function the script does not define yet is added by hand where it belongs.
"""
import glob
import re
import sys


def definition(text, name):
    """(start, end) of the last CREATE FUNCTION statement of `name` in text, or (None, None)."""
    matches = list(re.finditer(r"^CREATE (?:OR REPLACE )?FUNCTION %s\(" % re.escape(name), text, re.M))
    if not matches:
        return None, None
    match = matches[-1]
    start = match.start()
    body = text.find("AS $$", start)
    first_semicolon = text.index(";", start)
    if body < 0 or first_semicolon < body:  # LANGUAGE C: AS 'MODULE_PATHNAME', '...';
        return start, first_semicolon + 1
    return start, text.index("$$;", body + 5) + 3


def main():
    script, name = sys.argv[1], sys.argv[2]
    sources = "".join(open(f).read() for f in sorted(glob.glob("src/sql/*.sql")))
    start, end = definition(sources, name)
    if start is None:
        sys.exit("%s: not defined in src/sql" % name)
    current = re.sub(r"^CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", sources[start:end])
    text = open(script).read()
    old_start, old_end = definition(text, name)
    if old_start is None:
        sys.exit("%s: not in %s; add it by hand where it belongs" % (name, script))
    text = text[:old_start] + current + text[old_end:]
    open(script, "w").write(text)
    print("%s: replaced in %s" % (name, script))


if __name__ == "__main__":
    main()
