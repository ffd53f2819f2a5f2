#!/bin/sh
# Plots docs/bench/results.jsonl (written by bench/run_all.sh) into docs/bench/bench.svg.
# Optional: needs gnuplot (Debian: gnuplot-nox) and python3; not used by CI.
set -eu
cd "$(dirname "$0")"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
rows = {r["name"]: r for r in map(json.loads, open("results.jsonl"))}
oct_ = max((rows[k]["events_per_s"] for k in rows if k.startswith("octokit_")), default=0)
with open(t + "/inproc.dat", "w") as f:
    for label, key in [("octokit (Node)", None), ("jansson floor", "jansson_floor"),
                       ("pdwebhook full", "pdwebhook_full"), ("pdwebhook accept", "pdwebhook_accept"),
                       ("simdjson limit", "simdjson_limit")]:
        v = oct_ if key is None else rows.get(key, {}).get("events_per_s", 0)
        if v:
            f.write('"%s" %d\n' % (label, v))
with open(t + "/size.dat", "w") as f:
    for k in ["1KB", "4KB", "16KB", "64KB", "256KB", "1MB"]:
        r = rows.get("accept_body_" + k)
        if r:
            f.write("%d %.3f\n" % (r["bytes_per_event"], r["ns_per_event"] / r["bytes_per_event"]))
with open(t + "/pat.dat", "w") as f:
    for k in [1, 10, 100, 1000]:
        r = rows.get("accept_patterns_%d" % k)
        if r:
            f.write("%d %d\n" % (k, r["ns_per_event"]))
with open(t + "/http.dat", "w") as f:
    for label, key in [("octokit middleware", "http_octokit"), ("serve, spool", "http_serve_spool"),
                       ("serve, spool, retain 0", "http_serve_spool_retain0"),
                       ("serve, memory", "http_serve_memory"), ("bare libmicrohttpd", "http_floor_mhd"),
                       ("bare libmicrohttpd, epoll pool", "http_floor_mhd_epoll")]:
        r = rows.get(key)
        if r:
            f.write('"%s" %d %.2f\n' % (label, r["req_per_s"], r["p99_ms"]))
PY
gnuplot <<EOF
set terminal svg size 1000,760 dynamic font "sans,11"
set output "bench.svg"
set multiplot layout 2,2 title "pdwebhook benchmarks (docs/bench/results.jsonl)"
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid ytics
set title "in process: events/s (log scale)"
set logscale y
set xtics rotate by -20
plot "$T/inproc.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#4477aa"
unset logscale y
set title "HTTP, wrk 1 thread x 32 connections: req/s"
plot "$T/http.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#66aa55"
set xtics norotate
set title "pdwebhook accept: ns per byte vs body size"
set logscale x 2
set xlabel "body bytes"
set yrange [0:*]
plot "$T/size.dat" using 1:2 with linespoints pt 7 lc rgb "#aa3377" notitle
set title "pdwebhook accept: ns per event vs registered patterns"
set logscale x 10
set xlabel "patterns"
plot "$T/pat.dat" using 1:2 with linespoints pt 7 lc rgb "#ee7733" notitle
unset multiplot
EOF
echo "plot.sh: wrote $(pwd)/bench.svg"
