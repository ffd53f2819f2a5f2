#!/usr/bin/env python3
"""Run the ctest tests labelled `unit` (cmocka cases, fixture cases, fuzz corpus replays)
under valgrind --error-exitcode=1 --leak-check=full, two at a time; fail on any error.

    scripts/valgrind_tests.py BUILD_DIR [JOBS]

Each test runs with its own ctest command line and environment (CMOCKA_TEST_FILTER), read
from `ctest --show-only=json-v1`, so the list stays whatever tests/CMakeLists.txt says."""
import concurrent.futures, json, os, subprocess, sys, time

build = sys.argv[1]
jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
info = json.loads(subprocess.run(['ctest', '--show-only=json-v1', '-L', 'unit'], cwd=build,
                                 check=True, stdout=subprocess.PIPE).stdout)
VG = ['valgrind', '--error-exitcode=1', '--leak-check=full', '--errors-for-leak-kinds=definite',
      '--quiet', '--trace-children=no']


def run(t):
    env = dict(os.environ)
    wd = build
    for p in t.get('properties', []):
        if p['name'] == 'ENVIRONMENT':
            env.update(kv.split('=', 1) for kv in p['value'])
        if p['name'] == 'WORKING_DIRECTORY':
            wd = p['value']
    start = time.time()
    r = subprocess.run(VG + t['command'], cwd=wd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors='replace')
    bad = r.returncode != 0 or '[  FAILED  ]' in out or '[  ERROR   ]' in out
    return t['name'], bad, time.time() - start, out


tests = info['tests']
failed = []
with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
    for name, bad, secs, out in ex.map(run, tests):
        if bad:
            failed.append(name)
            print('FAIL %s (%.1fs)\n%s' % (name, secs, out[-4000:]))
print('valgrind: %d unit tests, %d failed' % (len(tests), len(failed)))
for n in failed:
    print('  ' + n)
sys.exit(1 if failed else 0)
