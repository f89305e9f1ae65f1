"""Every edit on real pages: the zero-config signal on public pages with ground-truth article text.

The corpus is ../shared/corpus/realpages (548 news and blog pages from Mozilla Readability's test
pages and the WCXB dev split; sources and licences in its README); REALPAGES_DIR overrides it.
For every page, deterministically (seeded by the page id):

- four article edits, each made on a line of the ground truth that the page holds exactly once:
  a paragraph removed, one word changed, a sentence added, a number changed;
- chrome noise made only outside the article: a word of chrome text changed, every counter (a
  lone number, or a number and a word or two: "137", "1.2k shares") changed, chrome lists
  reordered, a cookie banner added, nonces renewed (inline scripts, nonce attributes, hidden
  inputs, CSRF meta), and all of them at once.
  "Outside" is outside the article zone: the smallest element holding most of the truth's
  paragraphs and the headline; lists of links, <nav> and <aside> inside that zone count as
  chrome too. Headings, the ground truth and everything around it are never touched.

Each page becomes five targets on one loopback server: `<id>-chrome` steps through the chrome
kinds one at a time (each on top of the last), then all of them at once; `<id>-<edit>` goes
from the page, to the page with all chrome kinds at once, to that plus the edit. The real CLI
(`python -m monitor check`) runs with zero configuration (no selector or ignore rule; only
calibrate_delay = 0 s so that a pass does not wait), many targets per pass, in SHARDS processes.
An edit is "right" when its check raised an alert (added, removed, edited, restored) whose diff
holds the edit's words; "silent" when no alert came; "check failed" when a check of that target
erred. A chrome step is a "false alert" when it raised an alert.

trafilatura (text only, its defaults) runs on the same version pairs: an edit is right when its
text changed, a chrome step a false alert when its text changed, "check failed" when it gave
no text.

    python bench/realpages.py                    # every page (a few minutes on 2 cores)
    python bench/realpages.py --sample 40        # every 14th page or so (deterministic)
    python bench/realpages.py --pages aclu,0044  # these pages
    python bench/realpages.py --json             # the table as one JSON line too
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lxml.html

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.extract import fold, normalise  # noqa: E402

CORPUS = Path(os.environ.get("REALPAGES_DIR") or ROOT.parent / "shared" / "corpus" / "realpages")
EDITS = ("removal", "word", "sentence", "number")
CHROME = ("chrome text", "counters", "reordered lists", "cookie banner", "nonces")
ALL_AT_ONCE = "all at once"
ALERT_KINDS = {"added", "removed", "edited", "restored"}
SHARDS = 2
LONG_LINE = 8  # words: edits go to lines at least this long (short ones can repeat: "Pros:")
ZONE_SHARE = 0.8  # the article zone holds at least this share of the truth's paragraphs

INLINE = frozenset("a abbr b bdi bdo big cite code data del dfn em font i ins kbd label mark nobr q s samp "
                   "small span strike strong sub sup time tt u var".split())
SKIP = frozenset("script style noscript template head title textarea svg math".split())
WORDS = ("withdrawn", "disputed", "postponed", "overstated", "retracted", "unverified")
SENTENCES = ("Officials later declined to confirm these figures in writing.",
             "The company withdrew this statement after publication.",
             "Regulators have since opened an inquiry into the matter.",
             "Several employees disputed this account in interviews.")
CHROME_WORDS = ("Featured", "Latest", "Popular", "Trending", "Explore", "Discover")
BANNERS = (
    '<div id="cmp-{n}" class="cmp-container"><p class="cmp-text">We and our partners use cookies to '
    'personalise content and ads, to provide social media features and to analyse our traffic. By '
    'continuing to browse you agree to our use of cookies.</p><a href="/privacy">Privacy policy</a> '
    '<button>Accept all</button></div>',
    '<div class="cc-window cc-banner" role="dialog"><span class="cc-message">This website uses cookies '
    'to ensure you get the best experience on our website.</span><a class="cc-link" href="/cookies">Learn '
    'more</a><a class="cc-btn">Got it!</a></div>',
    '<section id="notice-{n}"><p>We value your privacy. We use cookies to enhance your browsing '
    'experience, serve personalised ads or content, and analyse our traffic. Click "Accept" to '
    'consent.</p><div><a href="#">Customise</a> <a href="#">Reject</a> <a href="#">Accept</a></div></section>',
)
_LETTERS = re.compile(r"[^\W\d_]{4,}")
_NUMBER = re.compile(r"\d+")
# What a counter looks like: a lone number, or a number and a word or two ("1.2k shares", "12 Comments").
_COUNTER = re.compile(r"^\W*\d[\d,.]*[kKmM]?\W*(?:[^\W\d]+\W*){0,2}$")


def manifest(corpus: Path = CORPUS) -> list[tuple[str, str]]:
    """(id, source) of every page, in the manifest's order."""
    rows = (corpus / "manifest.tsv").read_text().splitlines()[1:]
    return [tuple(row.split("\t")[:2]) for row in rows if row.strip()]


def _tag(el) -> str | None:
    return el.tag.lower() if isinstance(el.tag, str) else None


def _page_texts(root) -> dict:
    """Each element's text as the corpus README defines page text: inline tags joined without a
    space, other tags as a space, scripts and styles dropped; normalised."""
    raw: dict = {}

    def visit(el) -> str:
        parts = [el.text or ""]
        for child in el:
            tag = _tag(child)
            if tag is not None and tag not in ("script", "style"):
                inner = visit(child)
                parts.append(inner if tag in INLINE else f" {inner} ")
            parts.append(child.tail or "")
        text = "".join(parts)
        raw[el] = text
        return text

    visit(root)
    return {el: normalise(text) for el, text in raw.items()}


def _slots(el):
    """Text slots (element, 'text' | 'tail') under el in document order, outside SKIP elements."""
    for node in el.iter():
        tag = _tag(node)
        if tag is None or tag in SKIP or any(_tag(a) in SKIP for a in node.iterancestors()):
            continue
        if node.text:
            yield node, "text"
        if node is not el and node.tail:
            yield node, "tail"


def _get(slot) -> str:
    node, attr = slot
    return getattr(node, attr) or ""


def _set(slot, value: str) -> None:
    node, attr = slot
    setattr(node, attr, value)


@dataclass
class Edit:
    kind: str
    element: object  # the truth line's element
    expected: str  # the words the alert's diff must hold (removed for a removal, added otherwise)
    slot: tuple | None = None  # where a word or number is replaced: (element, 'text' | 'tail')
    span: tuple[int, int] = (0, 0)


@dataclass
class Page:
    id: str
    source: str
    versions: dict[str, list[bytes]] = field(default_factory=dict)  # target suffix -> bytes per step
    edits: dict[str, Edit] = field(default_factory=dict)
    chrome_steps: list[str] = field(default_factory=list)  # the kind each step after the first adds
    note: str = ""


class Analysis:
    """Where a page's truth lines are, its article zone, and the chrome outside it."""

    def __init__(self, root, truth: list[str], title: str):
        self.root = root
        texts = _page_texts(root)
        body_text = texts[root]
        by_text: dict[str, list] = {}
        for el, text in texts.items():
            if _tag(el) not in ("html", "body"):
                by_text.setdefault(text, []).append(el)
        self.lines: list[tuple[str, object]] = []  # (truth line, its outermost element), unique ones
        truth_els = []
        for line in dict.fromkeys(truth):
            els = by_text.get(line)
            if not els:
                continue
            outer = [e for e in els if not any(a in els for a in e.iterancestors())]
            truth_els.extend(outer)
            if len(outer) == 1 and body_text.count(line) == 1:
                self.lines.append((line, outer[0]))
        self.truth_els = truth_els
        self.protected = set(truth_els)
        for el in truth_els:
            self.protected.update(el.iterancestors())
            self.protected.update(el.iter())
        self.zone = self._zone(root, truth_els, title, texts)
        self.chrome_slots, self.chrome_lists = self._chrome()

    @staticmethod
    def _zone(root, truth_els, title, texts):
        body = root.find("body")
        zone = body if body is not None else root
        if not truth_els:
            return zone
        need = ZONE_SHARE * len(truth_els)
        holders = {}
        for el in truth_els:
            for a in el.iterancestors():
                holders[a] = holders.get(a, 0) + 1
        while True:
            inner = next((c for c in zone if holders.get(c, 0) >= need), None)
            if inner is None:
                break
            zone = inner
        # The headline belongs to the article: widen to the smallest element holding it too.
        headline = _headline(root, title, texts)
        if headline is not None and zone not in headline.iterancestors() and headline not in set(zone.iter()):
            common = next((a for a in zone.iterancestors() if headline in set(a.iter())), None)
            if common is not None and _tag(common) not in ("body", "html"):
                zone = common
        return zone

    def _chrome(self):
        inside = set(self.zone.iter())
        chrome_roots = [el for el in self.zone.iter()
                        if el not in self.protected and el is not self.zone and _chrome_widget(el)]
        in_widget = set()
        for el in chrome_roots:
            in_widget.update(el.iter())
        ok = lambda el: el not in self.protected and (el not in inside or el in in_widget)  # noqa: E731
        body = self.root.find("body")
        slots = [s for s in _slots(body if body is not None else self.root)
                 if ok(s[0] if s[1] == "text" else s[0].getparent())
                 and not any(_tag(a) in ("h1", "h2") for a in [s[0], *s[0].iterancestors()])
                 and _LETTERS.search(_get(s))]
        numbered = [s for s in _slots(body if body is not None else self.root)
                    if ok(s[0] if s[1] == "text" else s[0].getparent()) and _COUNTER.match(_get(s))
                    and not any(_tag(a) in ("h1", "h2") for a in [s[0], *s[0].iterancestors()])]
        lists = [el for el in self.root.iter("ul", "ol") if ok(el) and len(el.findall("li")) >= 3]
        return (slots, numbered), lists


def _headline(root, title: str, texts: dict):
    """The article's headline: the first h1 (or else h2) whose words are mostly the title's."""
    titles = {w.lower() for w in re.findall(r"\w+", title + " " + (texts.get(root.find(".//title")) or ""))}
    for tag in ("h1", "h2"):
        for h in root.iter(tag):
            words = [w.lower() for w in re.findall(r"\w+", texts.get(h, ""))]
            if words and sum(w in titles for w in words) >= 0.6 * len(words):
                return h
    return None


def _chrome_widget(el) -> bool:
    """Unambiguous chrome inside the article zone: <nav>, <aside>, or a list of links."""
    tag = _tag(el)
    if tag in ("nav", "aside"):
        return True
    if tag in ("ul", "ol") and len(el.findall("li")) >= 3:
        text = len(el.text_content().strip()) or 1
        links = sum(len(a.text_content().strip()) for a in el.iter("a"))
        return links >= 0.7 * text
    return False


# ---- the changes -------------------------------------------------------------------------------

def chrome_text(an: Analysis, rng: random.Random) -> bool:
    slots, _ = an.chrome_slots
    if not slots:
        return False
    for slot in rng.sample(slots, min(3, len(slots))):
        text = _get(slot)
        words = list(_LETTERS.finditer(text))
        m = rng.choice(words)
        new = rng.choice([w for w in CHROME_WORDS if w.lower() != m.group(0).lower()])
        _set(slot, text[:m.start()] + new + text[m.end():])
    return True


def counters(an: Analysis, rng: random.Random) -> bool:
    _, numbered = an.chrome_slots
    for slot in numbered:
        _set(slot, _NUMBER.sub(lambda m: str(int(m.group(0)) + rng.randint(1, 9)), _get(slot)))
    return bool(numbered)


def reorder(an: Analysis, rng: random.Random) -> bool:
    for ul in an.chrome_lists:
        items = ul.findall("li")
        k = rng.randint(1, len(items) - 1)
        where = [ul.index(li) for li in items]
        for li in items:
            ul.remove(li)
        for i, li in sorted(zip(where, items[k:] + items[:k]), key=lambda p: p[0]):
            ul.insert(i, li)
    return bool(an.chrome_lists)


def cookie_banner(an: Analysis, rng: random.Random) -> bool:
    body = an.root.find("body")
    if body is None:
        return False
    for old in body.findall("*[@data-bench-banner]"):
        body.remove(old)
    banner = lxml.html.fragment_fromstring(rng.choice(BANNERS).format(n=rng.randint(100, 999)))
    banner.set("data-bench-banner", "1")
    if rng.random() < 0.5:
        body.insert(0, banner)
    else:
        body.append(banner)
    return True


def nonces(an: Analysis, rng: random.Random) -> bool:
    token = lambda: "%032x" % rng.getrandbits(128)  # noqa: E731
    for el in an.root.iter("script"):
        if el.get("nonce") is not None:
            el.set("nonce", token())
        if el.text and el.get("src") is None:
            el.text = re.sub(r"/\*n:[0-9a-f]+\*/$", "", el.text) + f"/*n:{token()}*/"
    for el in an.root.iter("input"):
        if (el.get("type") or "").lower() == "hidden":
            el.set("value", token())
    for el in an.root.iter("meta"):
        if "csrf" in (el.get("name") or "").lower():
            el.set("content", token())
    return True


CHANGES = dict(zip(CHROME, (chrome_text, counters, reorder, cookie_banner, nonces)))


def all_at_once(an: Analysis, rng: random.Random) -> bool:
    return any([change(an, rng) for change in CHANGES.values()])


def make_edit(kind: str, an: Analysis, rng: random.Random) -> Edit | None:
    """Choose, deterministically, where the edit goes; None when the page has no place for it."""
    if kind == "number":
        places = [(line, el) for line, el in sorted(an.lines, key=lambda p: -len(p[0].split()))
                  if _NUMBER.search(line)][:20]
    else:
        places = [(line, el) for line, el in an.lines if len(line.split()) >= LONG_LINE]
    if not places:
        return None
    line, el = rng.choice(places)
    if kind == "removal":
        return Edit(kind, el, line)
    if kind == "sentence":
        return Edit(kind, el, rng.choice(SENTENCES))
    pattern = _NUMBER if kind == "number" else _LETTERS
    slots = [s for s in _slots(el) if pattern.search(_get(s))]
    if not slots:
        return None
    slot = rng.choice(slots)
    m = rng.choice(list(pattern.finditer(_get(slot))))
    if kind == "number":
        new = str(int(m.group(0)) + 1).zfill(len(m.group(0)))
    else:
        new = rng.choice([w for w in WORDS if w not in line.lower()])
    return Edit(kind, el, new, slot, m.span())


def apply_edit(edit: Edit) -> None:
    el = edit.element
    if edit.kind == "removal":
        el.drop_tree()
    elif edit.kind == "sentence":
        while len(el) and _tag(el) in ("table", "thead", "tbody", "tfoot", "tr", "ul", "ol", "dl"):
            el = el[-1]  # text goes into the last cell or item, where a browser shows it
        last = el[-1] if len(el) else None
        if last is not None:
            last.tail = (last.tail or "").rstrip() + " " + edit.expected
        else:
            el.text = (el.text or "").rstrip() + " " + edit.expected
    else:
        text = _get(edit.slot)
        _set(edit.slot, text[:edit.span[0]] + edit.expected + text[edit.span[1]:])


def _edit_seed(page_id: str, kind: str) -> str:
    return f"{page_id}/{kind}/place"


def _serialise(root) -> bytes:
    return lxml.html.tostring(root, encoding="unicode", doctype="<!DOCTYPE html>").encode("utf-8")


def _read(page_id: str, source: str, corpus: Path):
    folder = corpus / source / page_id
    html = (folder / "page.html").read_bytes().decode("utf-8-sig")
    truth = [line for line in (folder / "truth.txt").read_text("utf-8").splitlines() if line]
    title = json.loads((folder / "meta.json").read_text("utf-8")).get("title") or ""
    return html, truth, title


def _fresh(html: str):
    return lxml.html.document_fromstring(html)


def build(page_id: str, source: str, corpus: Path = CORPUS) -> Page:
    """Every version of every target of one page."""
    html, truth, title = _read(page_id, source, corpus)
    page = Page(page_id, source)

    def analysed():
        root = _fresh(html)
        an = Analysis(root, truth, title)
        body = root.find("body")
        if body is not None:  # a nonce script every version renews
            script = lxml.html.fragment_fromstring("<script>window.__bench_nonce='0';</script>")
            body.append(script)
        return an

    an = analysed()
    base = _serialise(an.root)
    steps = [base]
    for kind in CHROME:
        if CHANGES[kind](an, random.Random(f"{page_id}/{kind}")):
            steps.append(_serialise(an.root))
            page.chrome_steps.append(kind)
    an = analysed()
    all_at_once(an, random.Random(f"{page_id}/all"))
    steps.append(_serialise(an.root))
    page.chrome_steps.append(ALL_AT_ONCE)
    page.versions["chrome"] = steps
    for kind in EDITS:
        an = analysed()
        edit = make_edit(kind, an, random.Random(_edit_seed(page_id, kind)))
        if edit is None:
            continue
        all_at_once(an, random.Random(f"{page_id}/{kind}/all"))
        noisy = _serialise(an.root)
        apply_edit(edit)
        page.versions[kind] = [base, noisy, _serialise(an.root)]
        page.edits[kind] = edit
    return page


# ---- trafilatura on the same pairs ---------------------------------------------------------------

def trafilatura_text(body: bytes) -> str:
    import trafilatura

    return trafilatura.extract(body.decode("utf-8")) or ""


def trafilatura_outcomes(page: Page) -> dict[str, list[str]]:
    """Per target: per step after the first, 'alert' | 'quiet' | 'error' (no text)."""
    cache: dict[bytes, str] = {}

    def text(body: bytes) -> str:
        key = hashlib.sha256(body).digest()
        if key not in cache:
            cache[key] = trafilatura_text(body)
        return cache[key]

    out = {}
    for target, steps in page.versions.items():
        texts = [text(b) for b in steps]
        out[target] = ["error" if not texts[i] or not texts[i - 1] else
                       "alert" if texts[i] != texts[i - 1] else "quiet" for i in range(1, len(texts))]
    return out


# ---- generation in worker processes --------------------------------------------------------------

def _generate(job) -> dict:
    page_id, source, corpus, out_dir, with_trafilatura = job
    page = build(page_id, source, Path(corpus))
    for target, steps in page.versions.items():
        folder = Path(out_dir) / f"{page_id}-{target}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, body in enumerate(steps):
            (folder / f"{i}.html").write_bytes(body)
    return {"id": page_id, "source": source, "targets": {t: len(s) for t, s in page.versions.items()},
            "edits": {k: e.expected for k, e in page.edits.items()}, "chrome_steps": page.chrome_steps,
            "trafilatura": trafilatura_outcomes(page) if with_trafilatura else {}}


# ---- serving and checking ------------------------------------------------------------------------

def _serve(versions: Path, current: dict, port_box: list, ready: threading.Event, stop: threading.Event) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            name = self.path.strip("/")
            step = current.get(name)
            if step is None:
                self.send_error(404)
                return
            body = (versions / name / f"{step}.html").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_box.append(httpd.server_address[1])
    ready.set()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    stop.wait()
    httpd.shutdown()
    httpd.server_close()


def _server_process(versions: str, pipe) -> None:
    """A separate process (so its work does not count against the checks): serves
    /<target> as the step the parent last sent for it."""
    current: dict = {}
    port_box: list = []
    ready, stop = threading.Event(), threading.Event()
    threading.Thread(target=_serve, args=(Path(versions), current, port_box, ready, stop), daemon=True).start()
    ready.wait()
    pipe.send(port_box[0])
    while True:
        message = pipe.recv()
        if message is None:
            break
        current.update(message)
        pipe.send("ok")
    stop.set()


_LINE = re.compile(r"^(?P<name>[\w.-]+): (?:v(?P<version>\d+) (?P<kind>\w+): |ERROR (?P<error>.*))")


def run_checks(targets: dict[str, int], versions: Path, work: Path, shards: int = SHARDS) -> dict:
    """Serve every target's steps in turn and run `monitor check` on each pass. Returns
    {target: [(outcome, kind, version or error) per step]} and the change passages by
    (target, version)."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_server_process, args=(str(versions), child),
                                                         daemon=True)
    server.start()
    port = parent.recv()
    names = sorted(targets)
    groups = [names[i::shards] for i in range(shards)]
    configs = []
    for i, group in enumerate(groups):
        folder = work / f"shard{i}"
        folder.mkdir()
        toml = folder / "targets.toml"
        toml.write_text('[monitor]\ncalibrate_delay = "0s"\n' + "".join(
            f'\n[[targets]]\nname = "{n}"\nurl = "http://127.0.0.1:{port}/{n}"\n' for n in group))
        configs.append(toml)
    results: dict[str, list] = {n: [] for n in names}
    try:
        for step in range(max(targets.values())):
            parent.send({n: min(step, targets[n] - 1) for n in names})
            parent.recv()
            procs = [subprocess.Popen([sys.executable, "-m", "monitor", "check", "--config", str(c)], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in configs]
            said: dict[str, tuple] = {}
            for proc, group in zip(procs, groups):
                out, err = proc.communicate()
                if proc.returncode != 0:
                    raise SystemExit(f"monitor check exited {proc.returncode}: {err[-2000:]}")
                for line in out.splitlines():
                    m = _LINE.match(line)
                    if m and m.group("name") in targets:
                        said[m.group("name")] = (("error", None, m.group("error")) if m.group("error") is not None
                                                 else ("changed", m.group("kind"), int(m.group("version"))))
            for n in names:
                if step < targets[n]:
                    results[n].append(said.get(n, ("unchanged", None, None)))
    finally:
        parent.send(None)
        server.join(5)
    passages = {}
    for toml in configs:
        db = sqlite3.connect(toml.parent / "monitor.db")
        for name, seq, kind, text in db.execute(
                "SELECT t.name, v.seq, c.kind, c.passages FROM changes c JOIN targets t ON t.id = c.target_id "
                "JOIN versions v ON v.id = c.to_version_id"):
            passages[(name, seq)] = (kind, json.loads(text or "[]"))
        db.close()
    return {"steps": results, "passages": passages}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", fold(text).lower())


def edit_seen(kind: str, expected: str, passages: list[dict]) -> bool:
    """The alert's diff holds the edit: most of a removed line's (or an added sentence's) words
    among the removed (added) text, or the new word or number in an added passage."""
    if kind in ("removal", "sentence"):
        got = set(_words(" ".join(p.get("removed" if kind == "removal" else "added", "") for p in passages)))
        want = _words(expected)
        return bool(want) and sum(w in got for w in want) >= 0.5 * len(want)
    return any(fold(expected).lower() in fold(p.get("added", "")).lower() for p in passages)


# ---- the table -----------------------------------------------------------------------------------

ROWS = (("removal", "a paragraph of the article removed"), ("word", "one word of the article changed"),
        ("sentence", "a sentence added to the article"), ("number", "a number in the article changed"),
        *((k, f"chrome only: {k}") for k in CHROME), (ALL_AT_ONCE, "chrome only: all at once"),
        ("before edits", "all chrome at once, before each edit"),
        ("chrome pages", "chrome only: pages quiet throughout"))
COLUMNS = ("n", "right", "silent", "check failed", "false alerts")


def _blank() -> dict:
    return {c: 0 for c in COLUMNS}


def tally(pages: list[dict], ours: dict | None) -> dict[str, dict]:
    """The table for our checks (ours = run_checks' result) or, with ours None, trafilatura."""
    table = {key: _blank() for key, _ in ROWS}

    def count(row: str, what: str) -> None:
        table[row]["n"] += 1
        table[row][what] += 1

    for page in pages:
        for target, n in page["targets"].items():
            name = f"{page['id']}-{target}"
            if ours is not None:
                steps = ours["steps"][name]
                failed = any(s[0] == "error" for s in steps)
                alerted = [s[0] == "changed" and s[1] in ALERT_KINDS for s in steps[1:]]
                errors = [s[0] == "error" for s in steps[1:]]
            else:
                outcomes = page["trafilatura"][target]
                failed = "error" in outcomes
                alerted = [o == "alert" for o in outcomes]
                errors = [o == "error" for o in outcomes]
            if target == "chrome":
                for kind, alert, error in zip(page["chrome_steps"], alerted, errors):
                    count(kind, "check failed" if failed or error else "false alerts" if alert else "right")
                count("chrome pages", "check failed" if failed else "false alerts" if any(alerted) else "right")
                continue
            count("before edits", "check failed" if failed else "false alerts" if alerted[0] else "right")
            if failed:
                count(target, "check failed")
            elif not alerted[1]:
                count(target, "silent")
            elif ours is None or edit_seen(target, page["edits"][target], ours["passages"].get(
                    (name, ours["steps"][name][2][2]), ("", []))[1]):
                count(target, "right")
            else:
                count(target, "false alerts")  # an alert, but not with the edit in its diff
    return table


def render(tables: dict[str, dict]) -> str:
    lines = []
    for label, table in tables.items():
        lines.append(f"{label}:")
        lines.append(f"  {'case':<40} " + " ".join(f"{c:>12}" for c in COLUMNS) + "   right %")
        for key, title in ROWS:
            row = table[key]
            share = f"{100 * row['right'] / row['n']:6.1f}%" if row["n"] else "      -"
            lines.append(f"  {title:<40} " + " ".join(f"{row[c]:>12}" for c in COLUMNS) + f"   {share}")
        lines.append("")
    return "\n".join(lines)


def goal(ours: dict, theirs: dict) -> list[str]:
    """What misses the issue's goal (empty: met)."""
    missed = []
    for kind in EDITS:
        row = ours[kind]
        if row["n"] and row["right"] < 0.995 * row["n"]:
            missed.append(f"{kind}: {row['right']}/{row['n']} right (< 99.5%)")
        if row["right"] * max(theirs[kind]["n"], 1) < theirs[kind]["right"] * max(row["n"], 1):
            missed.append(f"{kind}: worse than trafilatura ({row['right']} vs {theirs[kind]['right']})")
    for key in (*CHROME, ALL_AT_ONCE, "before edits"):
        row = ours[key]
        if row["false alerts"] > 0.005 * row["n"]:
            missed.append(f"{key}: {row['false alerts']}/{row['n']} false alerts (> 0.5%)")
        if row["false alerts"] * max(theirs[key]["n"], 1) > theirs[key]["false alerts"] * max(row["n"], 1):
            missed.append(f"{key}: more false alerts than trafilatura ({row['false alerts']} vs "
                          f"{theirs[key]['false alerts']})")
    failed = sum(ours[key]["check failed"] for key in EDITS)
    if failed:
        missed.append(f"{failed} edit targets had a failed check (every page here has an article)")
    return missed


def choose(pages: list[tuple[str, str]], sample: int | None, ids: list[str] | None) -> list[tuple[str, str]]:
    if ids:
        known = dict(pages)
        missing = [i for i in ids if i not in known]
        if missing:
            raise SystemExit(f"not in {CORPUS / 'manifest.tsv'}: {', '.join(missing)}")
        return [(i, known[i]) for i in ids]
    if sample:
        step = max(1, len(pages) // sample)
        return pages[::step][:sample]
    return pages


def evaluate(chosen: list[tuple[str, str]], work: Path, with_trafilatura: bool = True,
             processes: int = SHARDS) -> dict:
    """Generate, serve, check; return the tables and the per-page details."""
    versions = work / "versions"
    versions.mkdir()
    jobs = [(i, s, str(CORPUS), str(versions), with_trafilatura) for i, s in chosen]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pages = pool.map(_generate, jobs, chunksize=1)
    targets = {f"{p['id']}-{t}": n for p in pages for t, n in p["targets"].items()}
    started = time.perf_counter()
    ours = run_checks(targets, versions, work, processes)
    checks_s = time.perf_counter() - started
    tables = {"monitor": tally(pages, ours)}
    if with_trafilatura:
        tables["trafilatura 2.3 (text only)"] = tally(pages, None)
    return {"tables": tables, "pages": pages, "ours": ours, "checks_s": checks_s}


def misses(result: dict) -> list[str]:
    """Every page and case the monitor got wrong, one line each (for fixing)."""
    out = []
    ours = result["ours"]
    for page in result["pages"]:
        for target in page["targets"]:
            name = f"{page['id']}-{target}"
            steps = ours["steps"][name]
            kinds = ["first", *page["chrome_steps"]] if target == "chrome" else ["first", "all chrome", target]
            for kind, step in zip(kinds, steps):
                want_alert = target != "chrome" and kind == target
                alerted = step[0] == "changed" and step[1] in ALERT_KINDS
                if step[0] == "error" or (kind != "first" and alerted != want_alert):
                    out.append(f"{name} [{kind}] {step}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, help="this many pages, spread evenly over the manifest")
    ap.add_argument("--pages", help="comma-separated page ids")
    ap.add_argument("--no-trafilatura", action="store_true", help="only the monitor")
    ap.add_argument("--misses", action="store_true", help="list every misjudged step")
    ap.add_argument("--json", action="store_true", help="also print the tables as one JSON line")
    args = ap.parse_args()
    if not (CORPUS / "manifest.tsv").exists():
        raise SystemExit(f"no corpus at {CORPUS} (set REALPAGES_DIR)")
    chosen = choose(manifest(), args.sample, args.pages.split(",") if args.pages else None)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = evaluate(chosen, Path(tmp), with_trafilatura=not args.no_trafilatura)
        print(f"{len(chosen)} pages, {sum(len(p['targets']) for p in result['pages'])} targets; "
              f"checks took {result['checks_s']:.0f} s, everything {time.perf_counter() - started:.0f} s\n")
        print(render(result["tables"]))
        if args.misses:
            print("\n".join(misses(result)))
        if not args.no_trafilatura:
            missed = goal(*result["tables"].values())
            print("goal: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
        if args.json:
            print(json.dumps(result["tables"]))


if __name__ == "__main__":
    main()
