"""Change-detection quality on page pairs with a reviewer's verdict.

Each case is a capture `a` and a later capture `b` of one page, and the verdict a reviewer wants:
`alert` (the content changed) or `quiet` (only chrome did). The evaluation serves a, then b, at
the same URL from a loopback server and runs the real `monitor check` with zero configuration
(no selector, no ignore rules); b "alerted" when its check raised a change event that channels
send by default (added, removed, edited, restored).

    python bench/corpus_eval.py [CORPUS_DIR ...]     # default: ../shared/corpus/edgi and tests/cases

Prints a confusion table per corpus and every misjudged case; exits 1 if any case is misjudged.
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from monitor.cli import main  # noqa: E402
from monitor.config import DEFAULT_KINDS  # noqa: E402

DEFAULT_CORPORA = [ROOT.parent / "shared" / "corpus" / "edgi", ROOT / "tests" / "cases"]
ALERT_KINDS = set(DEFAULT_KINDS) - {"gone", "error", "recovered"}


class _Page:
    body = b""


def _server(page: _Page) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page.body)))
            self.end_headers()
            self.wfile.write(page.body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [args[0], "--config", str(config), *args[1:]], catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"monitor {' '.join(args)} exited {result.exit_code}: {result.output}")
    return result.stdout


def judge(a: bytes, b: bytes) -> tuple[bool, str]:
    """Serve a then b at one URL through the real pipeline; (alerted?, what monitor said)."""
    page = _Page()
    httpd = _server(page)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "targets.toml"
            url = f"http://127.0.0.1:{httpd.server_address[1]}/page"
            config.write_text(f'[monitor]\ncalibrate_delay = "0s"\n\n[[targets]]\nname = "page"\nurl = "{url}"\n')
            page.body = a
            _cli(config, "check")
            page.body = b
            said = _cli(config, "check").strip().splitlines()[0]
            events = json.loads(_cli(config, "history", "page", "--json"))["events"]
            alerted = any(e["kind"] in ALERT_KINDS for e in events)
            return alerted, said
    finally:
        httpd.shutdown()
        httpd.server_close()


def cases(corpus: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in (corpus / "manifest.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, expected, what = line.split("\t")[:3]
            rows.append((name, expected, what))
    return rows


def evaluate(corpus: Path) -> list[dict]:
    results = []
    for name, expected, what in cases(corpus):
        alerted, said = judge((corpus / f"{name}-a.html").read_bytes(), (corpus / f"{name}-b.html").read_bytes())
        got = "alert" if alerted else "quiet"
        results.append({"case": name, "expected": expected, "got": got, "what": what, "monitor": said})
    return results


def table(results: list[dict]) -> str:
    count = lambda e, g: sum(1 for r in results if r["expected"] == e and r["got"] == g)  # noqa: E731
    return (f"                 monitor alert  monitor quiet\n"
            f"reviewer alert   {count('alert', 'alert'):>13}  {count('alert', 'quiet'):>13}\n"
            f"reviewer quiet   {count('quiet', 'alert'):>13}  {count('quiet', 'quiet'):>13}")


def run(corpora: list[Path]) -> int:
    wrong = 0
    for corpus in corpora:
        results = evaluate(corpus)
        print(f"{corpus.name}: {len(results)} cases")
        print(table(results))
        for r in results:
            if r["expected"] != r["got"]:
                wrong += 1
                print(f"  MISJUDGED {r['case']}: want {r['expected']}, got {r['got']} ({r['what']}); monitor: {r['monitor']}")
        print()
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(run([Path(p) for p in sys.argv[1:]] or [c for c in DEFAULT_CORPORA if c.exists()]))
