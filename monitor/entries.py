"""`monitor pause`, `monitor resume`, `monitor remove`: change one [[targets]] or [[sites]] entry
of targets.toml without rewriting the rest of it.

Only the entry's own lines change: a `paused = true` line added after its last key (or taken out),
or the entry's lines, with the comment lines just above its header, removed. Every other byte
stays. The result must parse to the same config with just that change, or nothing is written; it
is saved as `monitor add` saves (atomically, loaded again, the original put back on failure).
History is never touched: a removed or paused target keeps its versions in the database.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from . import config as config_module
from .add import Refused, _read, save

_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*(targets|sites)[ \t]*\]\][ \t]*(?:#.*)?$")
_ANY_HEADER = re.compile(r"^[ \t]*\[")
_PAUSED = re.compile(r"^[ \t]*paused[ \t]*=")


def _span(lines: list[str], table: str, index: int) -> tuple[int, int, int]:
    """(first comment line above the header, header line, end of the entry's keys) of the
    index-th [[table]] entry, as line indexes (end exclusive)."""
    headers = [i for i, line in enumerate(lines) if (m := _HEADER.match(line)) and m.group(1) == table]
    if index >= len(headers):
        raise ValueError(f"no [[{table}]] header for entry {index + 1}")
    header = headers[index]
    nxt = next((i for i in range(header + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    end = nxt
    while end > header + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    start = header
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start, header, end


def set_paused(text: str, table: str, index: int, paused: bool) -> str:
    lines = text.splitlines(keepends=True)
    _, header, end = _span(lines, table, index)
    body = [i for i in range(header + 1, end) if _PAUSED.match(lines[i])]
    for i in reversed(body):
        del lines[i]
        end -= 1
    if paused:
        newline = "\r\n" if "\r\n" in text else "\n"
        if not lines[end - 1].endswith(("\n", "\r")):
            lines[end - 1] += newline
        lines.insert(end, "paused = true" + newline)
    return "".join(lines)


def remove_entry(text: str, table: str, index: int) -> str:
    lines = text.splitlines(keepends=True)
    start, _, end = _span(lines, table, index)
    while end < len(lines) and not lines[end].strip():  # and the blank lines after it
        end += 1
    return "".join(lines[:start] + lines[end:])


def _find(raw: dict, name: str) -> tuple[str, int]:
    for table in ("targets", "sites"):
        for i, entry in enumerate(raw.get(table, [])):
            if isinstance(entry, dict) and entry.get("name") == name:
                return table, i
    raise LookupError(name)


def change(path: Path, name: str, action: str) -> str:
    """action: "pause", "resume" or "remove". Returns what was done, for the user; raises
    add.Refused (exit 2) when the entry is not there or the file cannot be edited safely."""
    original = _read(path)
    if original is None:
        raise Refused(f"{path}: no such file")
    try:
        config_module.load(path)
        text = original.decode("utf-8")
        raw = tomllib.loads(text)
    except (config_module.ConfigError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Refused(f"{exc}\n(fix the file first: {path} is unchanged)") from None
    try:
        table, index = _find(raw, name)
    except LookupError:
        raise Refused(f"{path}: no [[targets]] or [[sites]] entry named {name!r}; nothing changed (a post "
                      "discovered by a site is paused or removed with its site)") from None
    kind = "target" if table == "targets" else "site"
    entry = raw[table][index]
    expected = {k: [dict(e) for e in v] if isinstance(v, list) else v for k, v in raw.items()}
    paused = action == "pause"
    if action != "remove" and bool(entry.get("paused")) == paused:
        return f"{kind} {name!r} is already {'paused' if paused else 'watched'}; nothing changed"
    try:
        if action == "remove":
            del expected[table][index]
            new = remove_entry(text, table, index)
        else:
            expected[table][index].pop("paused", None)
            if paused:
                expected[table][index]["paused"] = True
            new = set_paused(text, table, index, paused)
        if tomllib.loads(new) != expected:
            raise ValueError("the edit would change more than that entry")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise Refused(f"{path}: cannot {action} {kind} {name!r} safely ({exc}); edit the file by hand") from None
    save(path, original, new.encode("utf-8"))
    return {"pause": f"paused {kind} {name!r} in {path}: not checked until `monitor resume {name}`; its history is kept",
            "resume": f"resumed {kind} {name!r} in {path}: watched again from its next check",
            "remove": f"removed {kind} {name!r} from {path}; its history is kept (`monitor targets --all`)"}[action]
