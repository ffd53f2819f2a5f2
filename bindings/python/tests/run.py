"""Run unittest modules and end with a plain "N passed, M failed" line.

    python3 run.py test_receiver [test_layout ...]

The package is imported from the directory above (bindings/python), or with
PDW_PY_INSTALLED=1 as installed (the venv ctest makes: test_installed, test_servers,
test_flask). With PDW_PY_STRICT=1 (as ctest sets it) a skipped test counts as failed: under
ctest every prerequisite (library, layout helper, fixtures) is given, so a skip is a bug.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if os.environ.get("PDW_PY_INSTALLED") != "1":   # else: the package as pip installed it
    sys.path.insert(0, os.path.dirname(HERE))


def main(argv):
    names = argv[1:] or ["test_layout", "test_receiver", "test_fixtures", "test_example"]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    skipped = len(result.skipped)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    strict = os.environ.get("PDW_PY_STRICT") == "1"
    if strict:
        failed += skipped
    passed = result.testsRun - failed - (0 if strict else skipped)
    if skipped:
        print("%d skipped%s" % (skipped, " (counted as failed: PDW_PY_STRICT=1)" if strict else ""))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
