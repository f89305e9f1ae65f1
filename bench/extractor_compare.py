"""The extractor choice, measured: monitor's extraction against trafilatura's on the same corpora.

For each page pair (a, b) with a reviewer's verdict, each extractor's text of a and of b is
compared: a difference is an "alert". Pure extraction, no learning or masking beyond what each
extractor does itself, so this isolates the main-content choice. trafilatura is not a project
dependency:  pip install trafilatura lxml_html_clean

    python bench/extractor_compare.py [CORPUS_DIR ...]   # default: ../shared/corpus/edgi and tests/cases
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus_eval import DEFAULT_CORPORA, cases  # noqa: E402

from monitor.extract import extract  # noqa: E402
from monitor.fetch import decode  # noqa: E402


def ours(html: str) -> str:
    return extract(html, url="https://example.org/page").text()


def trafilatura_text(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_links=True, include_images=True, include_tables=True) or ""


def score(corpus: Path, extractor) -> tuple[int, int, float]:
    right = total = 0
    started = time.perf_counter()
    for name, expected, _ in cases(corpus):
        a, b = (decode((corpus / f"{name}-{side}.html").read_bytes(), None)[0] for side in "ab")
        got = "alert" if extractor(a) != extractor(b) else "quiet"
        right += got == expected
        total += 1
    return right, total, (time.perf_counter() - started) / max(total, 1) / 2 * 1000


def main(corpora: list[Path]) -> None:
    extractors = {"monitor": ours}
    try:
        import trafilatura  # noqa: F401

        extractors["trafilatura"] = trafilatura_text
    except ImportError as exc:
        print(f"trafilatura not measured ({exc}); pip install trafilatura lxml_html_clean")
    for corpus in corpora:
        for label, extractor in extractors.items():
            right, total, ms = score(corpus, extractor)
            print(f"{corpus.name:<6} {label:<12} {right:>2}/{total} verdicts right   {ms:5.1f} ms per page")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or [c for c in DEFAULT_CORPORA if c.exists()])
