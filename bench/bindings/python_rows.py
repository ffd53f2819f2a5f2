"""The Python binding in process: Receiver.handle() (ctypes into libpdwebhook: Basic auth,
strict parse, dispatch to a handler that reads one field) over the same compact bodies as
pdwebhook-bench, next to a plain json.loads + dict dispatch. Rows in pdwebhook-bench's
format.

    PDWEBHOOK_LIBRARY=build/lib python3 bench/bindings/python_rows.py CORPUS_DIR SECONDS
"""
import base64
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))
import pdwebhook  # noqa: E402


def main(argv):
    if len(argv) < 3:
        print("usage: python_rows.py CORPUS_DIR SECONDS [ROUNDS]", file=sys.stderr)
        return 2
    corpus, seconds = argv[1], float(argv[2])
    rounds = int(argv[3]) if len(argv) > 3 else 5
    bodies = []
    for name in sorted(os.listdir(corpus)):
        if name.endswith(".json"):
            with open(os.path.join(corpus, name), "rb") as f:
                bodies.append(json.dumps(json.loads(f.read()), separators=(",", ":"),
                                         ensure_ascii=False).encode())
    per = sum(len(b) for b in bodies) / len(bodies)
    secret = "correct horse battery staple"
    headers = [("Content-Type", "application/json"),
               ("Authorization", "Basic " + base64.b64encode(
                   ("pipedrive:" + secret).encode()).decode())]
    receiver = pdwebhook.Receiver([("pipedrive", secret)], disable_dedup=True)
    sink = [0]

    @receiver.on("*.*")
    def every(event):
        sink[0] += len(event.action)

    def handle(b):
        receiver.handle("POST", headers, b)

    def bump(meta):
        sink[0] += len(meta.get("action") or "")

    table = {"deal": bump}

    def plain(b):
        p = json.loads(b)
        meta = p.get("meta") or {}
        table.get(meta.get("entity") or meta.get("object"), bump)(meta)

    def measure(fn):
        def one_pass():
            for b in bodies:
                fn(b)
            return len(bodies)
        warm = time.perf_counter() + 0.2
        while time.perf_counter() < warm:
            one_pass()
        eps = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            deadline = t0 + seconds / rounds
            n = 0
            while True:
                n += one_pass()
                if time.perf_counter() >= deadline:
                    break
            eps.append(n / (time.perf_counter() - t0))
        return sorted(eps)

    def row(name, eps):
        med = statistics.median(eps)
        print(json.dumps({"name": name, "events_per_s": round(med),
                          "MB_per_s": round(med * per / 1e6, 1),
                          "ns_per_event": round(1e9 / med), "bytes_per_event": round(per),
                          "threads": 1, "rounds": len(eps),
                          "min_events_per_s": round(eps[0]),
                          "max_events_per_s": round(eps[-1])}, separators=(",", ":")),
              flush=True)

    row("py_pdwebhook_handle", measure(handle))
    row("py_json_loads_dispatch", measure(plain))
    print("python_rows: pdwebhook %s via ctypes, Python %s, %d bodies (sink %s)"
          % (pdwebhook.version(), sys.version.split()[0], len(bodies), sink[0] > 0),
          file=sys.stderr)
    receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
