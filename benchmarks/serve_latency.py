"""How fast does the classroom page answer?  `bench serve` with the default models, timed from outside.

    python benchmarks/serve_latency.py                    # default n-gram, --transformer auto
    python benchmarks/serve_latency.py --rounds 5 --json

Starts `bench serve` in its own process on a free port (so the client's work does not
share its interpreter), waits for the models to load, warms it with one pass over the
prompts, then measures over bench/prompts.txt:
- keystroke round trip: the API time of one `/api/compare` as the page asks it on every
  keystroke (word budget 64, no greedy continuation), median and p95 over every prompt
  and round; beside it the same question as `bench compare` asks it (budget 1,024, with
  continuations), and the page's whole update (compare and inspect together, then the trie);
- 20 concurrent requests: twenty `/api/compare` at once, how many failed and the wall time;
- first page load: the page and its two files and /api/status over HTTP, and, when
  headless Chromium and chromedriver are here, the browser's own load time for the page.
Beside each wall time, the server's own CPU time per request (from /proc, Linux): on a
busy machine wall times grow with the load, CPU time much less, so it says what a quiet
machine would give. Figures are only comparable within one run on one machine; the load
average is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corpora.machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
PROMPTS = REPO / "bench" / "prompts.txt"
PAGE_ASKS = {"budget": 64, "continuation": "false"}  # what bench/serve/static/app.js asks on a keystroke
CLI_ASKS = {"budget": 1024, "continuation": "true"}  # what `bench compare` computes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngram", help="n-gram model file (default: the default model)")
    parser.add_argument("--transformer", default="auto", help="transformer (default: auto)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the prompts (default: 3)")
    parser.add_argument("--concurrent", type=int, default=20, help="requests sent at once (default: 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args()


# ------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, ngram: str | None, transformer: str) -> subprocess.Popen:
    """`bench serve` in a child process (this checkout's code), quiet."""
    command = [sys.executable, "-c", "from bench.cli import main; main()", "serve", "--port", str(port),
               "--transformer", transformer, *(["--ngram", ngram] if ngram else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_up(base: str, server: subprocess.Popen, limit: float = 600) -> float:
    """Seconds until /api/status answers (the models are loaded before the port answers)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if server.poll() is not None:
            raise SystemExit(f"bench serve stopped: {server.stderr.read().strip()}")
        try:
            get(base + "/api/status")
            return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit("bench serve did not come up")


# ------------------------------------------------------------------ requests


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.status, response.read()


def timed(url: str) -> tuple[float, int]:
    """(seconds, HTTP status) of one GET, errors included."""
    started = time.perf_counter()
    try:
        status, _ = get(url)
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        status = 0
    return time.perf_counter() - started, status


def compare_url(base: str, prompt: str, asks: dict) -> str:
    return f"{base}/api/compare?{urllib.parse.urlencode({'prompt': prompt, 'k': 10, **asks})}"


def page_update(base: str, prompt: str) -> float:
    """The page's whole update after a keystroke: compare and inspect at once, then the trie."""
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        answer = pool.submit(get, compare_url(base, prompt, PAGE_ASKS))
        pool.submit(get, f"{base}/api/inspect?{urllib.parse.urlencode({'prompt': prompt.rstrip(), 'k': 5})}").result()
        compared = json.loads(answer.result()[1])
    tokens = [("token", t) for t in compared["ngram"]["matched_context"]]
    get(f"{base}/api/trie?{urllib.parse.urlencode([*tokens, ('depth', 2), ('top', 5)])}")
    return time.perf_counter() - started


def server_cpu(pid: int) -> float | None:
    """Seconds of CPU the server process has used so far (user + system), None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run) -> tuple[list[float], float | None]:
    """The wall times `run()` returns, and the server's CPU seconds per request meanwhile."""
    before = server_cpu(pid)
    seconds = run()
    after = server_cpu(pid)
    return seconds, None if before is None or after is None else (after - before) / len(seconds)


def keystrokes(base: str, pid: int, prompts: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Wall and server CPU seconds of each keystroke's /api/compare, one request at a time."""
    wall, cpu = [], []
    for _ in range(rounds):
        for prompt in prompts:
            before = server_cpu(pid)
            wall.append(timed(compare_url(base, prompt, PAGE_ASKS))[0])
            after = server_cpu(pid)
            if before is not None and after is not None:
                cpu.append(after - before)
    return wall, cpu


def summary(seconds: list[float], cpu: float | None = None) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1), "n": len(ms),
            "server_cpu_ms_mean": None if cpu is None else round(cpu * 1000, 1)}


def concurrent(base: str, prompts: list[str], n: int) -> dict:
    urls = [compare_url(base, prompts[i % len(prompts)], PAGE_ASKS) for i in range(n)]
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(timed, urls))
    return {"requests": n, "errors": sum(status != 200 for _, status in results),
            "wall_ms": round((time.perf_counter() - started) * 1000, 1),
            "slowest_ms": round(max(s for s, _ in results) * 1000, 1)}


def first_load_http(base: str) -> float:
    """The page, its script and style, and the status call: what comes before the first paint."""
    started = time.perf_counter()
    for path in ("/", "/static/app.js", "/static/style.css", "/api/status"):
        get(base + path)
    return time.perf_counter() - started


def first_load_browser(base: str) -> float | None:
    """Headless Chromium's load time for the page (navigation start to load event), if it is here."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not (chromium and driver):
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(base + "/")
        ms = browser.execute_script(
            "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;")
        return ms / 1000
    finally:
        browser.quit()


# ------------------------------------------------------------------ main


def main() -> None:
    args = parse_args()
    prompts = [line.strip() for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, args.ngram, args.transformer)
    try:
        loaded = wait_until_up(base, server)
        status = json.loads(get(base + "/api/status")[1])
        for prompt in prompts:  # warm: smoothing tables, the books for example sentences
            get(compare_url(base, prompt, PAGE_ASKS))
        pid = server.pid
        keystroke, keystroke_cpu = keystrokes(base, pid, prompts, args.rounds)
        cli_like = measured(pid, lambda: [timed(compare_url(base, p, CLI_ASKS))[0] for p in prompts])
        page = measured(pid, lambda: [page_update(base, p) for _ in range(args.rounds) for p in prompts])
        crowd = concurrent(base, prompts, args.concurrent)
        http_load = first_load_http(base)
        browser_load = first_load_browser(base)
    finally:
        server.terminate()
        server.wait(30)
    figures = {
        "models": {"ngram": status["ngram"]["description"], "transformer": status["transformer"]["description"]},
        "server_start_s": round(loaded, 1),
        "keystroke_compare": summary(keystroke, statistics.mean(keystroke_cpu) if keystroke_cpu else None),
        "keystroke_server_cpu": summary(keystroke_cpu) if keystroke_cpu else None,
        "compare_as_bench_compare": summary(*cli_like),
        "page_update": summary(*page),
        "concurrent": crowd,
        "first_load_http_ms": round(http_load * 1000, 1),
        "first_load_browser_ms": round(browser_load * 1000, 1) if browser_load is not None else None,
        "machine": f"{cpu_name()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"n-gram: {figures['models']['ngram']}\ntransformer: {figures['models']['transformer']}")
    print(f"server up (models loaded) after {figures['server_start_s']} s\n")
    print("| what | median ms | p95 ms | n | server CPU ms a request (mean) |\n|---|---:|---:|---:|---:|")
    for label, key in [("keystroke: /api/compare as the page asks", "keystroke_compare"),
                       ("/api/compare as bench compare asks", "compare_as_bench_compare"),
                       ("the page's whole update (compare ∥ inspect, then trie)", "page_update")]:
        row = figures[key]
        print(f"| {label} | {row['median_ms']} | {row['p95_ms']} | {row['n']} | {row['server_cpu_ms_mean']} |")
    if figures["keystroke_server_cpu"]:
        cpu = figures["keystroke_server_cpu"]
        print(f"\nkeystroke, the server's CPU time alone (what a quiet machine would take): "
              f"median {cpu['median_ms']} ms, p95 {cpu['p95_ms']} ms")
    c = figures["concurrent"]
    print(f"\n{c['requests']} concurrent /api/compare: {c['errors']} errors, all answered in {c['wall_ms']} ms "
          f"(slowest {c['slowest_ms']} ms)")
    print(f"first page load: {figures['first_load_http_ms']} ms over HTTP (page, script, style, status)"
          + (f"; {figures['first_load_browser_ms']} ms in headless Chromium" if browser_load is not None else ""))
    print(f"machine: {figures['machine']}")


if __name__ == "__main__":
    main()
