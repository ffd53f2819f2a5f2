#!/bin/sh
# End-to-end test of examples/civetweb: start it on a free port, post real Pipedrive bodies
# with curl, check the statuses and the handler lines (see server_matrix in lib.sh).
#   sh tests/e2e/test_example_civetweb.sh PROGRAM FIXTURES_DIR
[ $# -eq 2 ] || { echo "usage: $0 PROGRAM FIXTURES_DIR" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"
server_matrix "$1" "$2"
finish
