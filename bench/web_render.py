"""Server-side render time of the web UI for a target with 1,000 versions.

Builds a database and snapshot store with one blog post edited 1,000 times (paragraphs removed,
sentences added, words changed, earlier texts restored), recorded through Store.record_version
with the changes classified by the real diff and detect code, as a check would. Then it asks the
ASGI app for each page in-process (httpx's ASGITransport: routing, the guard middleware, the
queries, the templates; no sockets) and prints the median of several runs per page.

    python bench/web_render.py                  # 1000 versions, 15 runs per page
    python bench/web_render.py --versions 200 --runs 30 --keep DIR --json
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import config, detect  # noqa: E402
from monitor.app import open_store  # noqa: E402
from monitor.extract import Extracted  # noqa: E402
from monitor.store import Attempt, Capture, Due  # noqa: E402
from monitor.sync import sync_targets  # noqa: E402

NAME = "big-post"
TARGET_MS = 100.0
WORDS = ("agency cloud data platform government mission secure workload compliance customer network service "
         "citizens modern program public record policy access identity analytics edge partner support team "
         "operations research budget contract federal state local office review report system").split()
CONFIG = """
[monitor]
database = "sqlite:///monitor.db"
snapshots = "snapshots"

[[targets]]
name = "{name}"
url = "https://blog.example.org/2018/01/24/big-post/"
keywords = ["facial recognition"]
tags = ["bench"]
"""


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(8, 18))
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))


def edit(rng: random.Random, blocks: list[str], history: list[list[str]]) -> list[str]:
    """One realistic edit: a paragraph removed or added, a sentence added, a word changed, or an
    earlier text restored."""
    blocks = list(blocks)
    roll = rng.random()
    if roll < 0.08 and len(history) > 2:
        return list(rng.choice(history[:-1]))
    i = rng.randrange(len(blocks))
    if roll < 0.3 and len(blocks) > 10:
        del blocks[i]
    elif roll < 0.5:
        blocks.insert(i, paragraph(rng))
    elif roll < 0.7:
        blocks[i] += " " + sentence(rng)
    else:
        words = blocks[i].split()
        words[rng.randrange(len(words))] = rng.choice(WORDS)
        blocks[i] = " ".join(words)
    return blocks


def page_html(title: str, blocks: list[str], seq: int) -> bytes:
    body = "\n".join(f"<p>{b}</p>" for b in blocks)
    return (f"<!DOCTYPE html><html><head><title>{title}</title></head><body><header>Blog · build {seq}</header>"
            f"<main><article><h1>{title}</h1>{body}</article></main><footer>© 2018</footer></body></html>").encode()


def build(workdir: Path, versions: int, seed: int = 1) -> None:
    (workdir / "targets.toml").write_text(CONFIG.format(name=NAME))
    settings = config.load(workdir / "targets.toml")
    store = open_store(settings)
    state = sync_targets(settings, store)[NAME]
    rng = random.Random(seed)
    title = "Federal agencies continue to advance capabilities in the cloud"
    blocks = [paragraph(rng) for _ in range(25)]
    blocks[3] += " It can accelerate facial recognition and identification."
    history: list[list[str]] = []
    started = datetime(2018, 1, 24, 9, 0, tzinfo=timezone.utc)
    previous: Extracted | None = None
    previous_raw = None
    for seq in range(1, versions + 1):
        if seq > 1:
            blocks = edit(rng, blocks, history)
            while blocks == history[-1]:
                blocks = edit(rng, blocks, history)
        history.append(blocks)
        extracted = Extracted(title, blocks)
        text = extracted.text()
        raw = page_html(title, blocks, seq)
        capture = Capture(raw=raw, raw_sha=hashlib.sha256(raw).hexdigest(), text=text,
                          text_sha=hashlib.sha256(text.encode()).hexdigest(), title=title,
                          words=extracted.word_count, blocks=len(blocks), extract_key="bench", http_status=200,
                          final_url="https://blog.example.org/2018/01/24/big-post/",
                          headers={"content-type": "text/html; charset=utf-8"}, etag=None, last_modified=None)
        verdict = detect.first_version(extracted.word_count)
        if previous is not None:
            restored = store.earliest_with_text(state.id, capture.text_sha, exclude_id=state.last_version_id)
            verdict = detect.compare(previous.lines, extracted.lines, restored)
        store.record_version(state, capture=capture, verdict=verdict, due=Due(None, 0.0), previous_raw_sha=previous_raw,
                             attempt=Attempt(started + timedelta(hours=6 * seq), 120, 200))
        previous, previous_raw = extracted, capture.raw_sha
        if seq % 100 == 0:
            print(f"  recorded {seq} versions", file=sys.stderr)
    store.close()


async def measure(app, paths: list[str], runs: int) -> list[dict]:
    import httpx

    results = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path in paths:
            times = []
            for _ in range(runs + 1):
                started = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
            timed = times[1:]
            results.append({"path": path, "first_ms": round(times[0], 1),
                            "median_ms": round(statistics.median(timed), 1), "max_ms": round(max(timed), 1),
                            "bytes": len(response.content)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15, help="timed requests per page (after one untimed)")
    parser.add_argument("--keep", type=Path, help="build in this directory (reused when it holds a database)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="monitor-web-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "monitor.db").exists():
        started = time.perf_counter()
        print(f"building {args.versions} versions in {workdir} …", file=sys.stderr)
        build(workdir, args.versions)
        print(f"  built in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    from monitor.web.app import create_app

    settings = config.load(workdir / "targets.toml")
    store = open_store(settings)
    with store.engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT count(*) FROM versions").scalar()
        middle = conn.exec_driver_sql("SELECT id FROM changes ORDER BY id LIMIT 1 OFFSET ?", (versions // 2,)).scalar()
    pages = {
        "target page (newest 100 versions)": f"/targets/{NAME}",
        f"target page (all {versions} versions)": f"/targets/{NAME}?per_page=1000",
        "target page (oldest versions)": f"/targets/{NAME}?page={-(-versions // 100)}",
        "change page (inline)": f"/changes/{middle}",
        "change page (side by side)": f"/changes/{middle}?view=side",
        f"compare v1 with v{versions}": f"/targets/{NAME}/compare?from=1&to={versions}",
        "version page": f"/targets/{NAME}/versions/{versions // 2}",
        "dashboard": "/",
        "Atom feed (50 entries)": f"/targets/{NAME}/changes.atom",
        f"search ({versions} versions)": "/search?q=facial+recognition",
        f"API history ({versions} versions)": f"/api/targets/{NAME}",
    }
    results = asyncio.run(measure(create_app(settings, store), list(pages.values()), args.runs))
    store.close()
    for label, result in zip(pages, results):
        result["page"] = label
    gated = [r for r in results if r["page"].startswith(("target page (newest", "change page"))]
    verdict = all(r["median_ms"] <= TARGET_MS for r in gated)
    if args.json:
        print(json.dumps({"versions": versions, "runs": args.runs, "target_ms": TARGET_MS, "met": verdict,
                          "pages": results}))
        return
    width = max(len(r["page"]) for r in results)
    print(f"\n{versions} versions, median of {args.runs} runs (first request, caches cold, shown apart)\n")
    print(f"{'page':<{width}}  {'median':>8}  {'max':>8}  {'first':>8}  {'size':>9}")
    for r in results:
        print(f"{r['page']:<{width}}  {r['median_ms']:>6.1f}ms  {r['max_ms']:>6.1f}ms  {r['first_ms']:>6.1f}ms  "
              f"{r['bytes'] / 1000:>7.1f}kB")
    print(f"\ntarget: target page and change page ≤ {TARGET_MS:.0f} ms (median): {'met' if verdict else 'MISSED'}")


if __name__ == "__main__":
    main()
