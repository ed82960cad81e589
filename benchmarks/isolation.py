#!/usr/bin/env python3
"""Session start time and streaming latency with `--isolation process` and `bubblewrap`, side by
side.

Usage: python3 benchmarks/isolation.py [ROUNDS]. Starts one `proliferate-server` per mode (the
debug build in $CARGO_TARGET_DIR), then per round and mode, alternating: creates a session and
times it to `running`; then, subscribed to the session's event stream (SSE), sends a prompt whose
scripted answer streams 50 deltas 20 ms apart and times the first delta's arrival after the
prompt, the spread from first to last delta (1 s at the model), and the prompt to
`turn_completed`. Prints medians and the bubblewrap/process ratio.
"""
import json, os, statistics, subprocess, sys, tempfile, threading, time, urllib.request

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SERVER = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug/proliferate-server")
SECRET = "benchmark-secret-of-at-least-32-bytes-long"


def start(mode):
    data = tempfile.mkdtemp()
    env = dict(os.environ, PROLIFERATE_JWT_SECRET=SECRET, PROLIFERATE_SERVICE_SECRET=SECRET, RUST_LOG="warn")
    child = subprocess.Popen([SERVER, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--isolation", mode],
                             stdout=subprocess.PIPE, env=env, text=True)
    line = ""
    while not line.startswith("proliferate-server listening on "):
        line = child.stdout.readline()
    base = line.strip().rsplit(" ", 1)[1]
    token = subprocess.check_output([SERVER, "token", "--data-dir", data, "--scopes", "read,write,admin"], env=env, text=True).strip()
    return child, base, token


def call(base, token, method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def until(predicate):
    while True:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)


def stream(base, token, session, after, arrivals, done):
    """Appends the arrival time of each text delta, until the turn completes."""
    request = urllib.request.Request(f"{base}/v1/sessions/{session}/events?after_seq={after}",
                                     headers={"authorization": "Bearer " + token, "accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        for line in answer:
            if not line.startswith(b"data:"):
                continue
            frame = json.loads(line[5:])
            kind = frame.get("event", {}).get("type")
            if kind == "text_delta":
                arrivals.append(time.monotonic())
            elif kind == "turn_completed":
                done.append(time.monotonic())
                return


def round_trip(base, token):
    began = time.monotonic()
    session = call(base, token, "POST", "/v1/sessions", {})["id"]
    until(lambda: call(base, token, "GET", f"/v1/sessions/{session}")["status"] == "running")
    started = time.monotonic() - began
    head = call(base, token, "GET", f"/v1/sessions/{session}")["head_seq"]
    arrivals, done = [], []
    reader = threading.Thread(target=stream, args=(base, token, session, head, arrivals, done))
    reader.start()
    time.sleep(0.5)  # the subscription is open before the prompt
    words = " ".join(f"w{n}" for n in range(50))
    began = time.monotonic()
    call(base, token, "POST", f"/v1/sessions/{session}/messages",
         {"prompt_id": "p1", "content": f"[[delay:20]] [[say:{words}]] [[deltas:50]]"})
    reader.join()
    call(base, token, "DELETE", f"/v1/sessions/{session}")
    return started, arrivals[0] - began, arrivals[-1] - arrivals[0], done[0] - began


servers = {mode: start(mode) for mode in ("process", "bubblewrap")}
NAMES = ("session start to running", "prompt to first delta", "first to last of 50 deltas", "prompt to turn_completed")
results = {mode: [[] for _ in NAMES] for mode in servers}
try:
    for _ in range(ROUNDS):
        for mode, (_, base, token) in servers.items():
            for index, value in enumerate(round_trip(base, token)):
                results[mode][index].append(value)
finally:
    for child, _, _ in servers.values():
        child.terminate()
        child.wait()
for index, name in enumerate(NAMES):
    process, bubblewrap = (statistics.median(results[mode][index]) for mode in ("process", "bubblewrap"))
    print(f"{name}: process {process:.2f} s, bubblewrap {bubblewrap:.2f} s, ratio {bubblewrap / process:.2f}")
