"""Snapshots: the content-addressed store every capture and text is kept in."""
from __future__ import annotations

import hashlib
import random

import pytest

import monitor.snapshots
from monitor.snapshots import SnapshotError, Snapshots


def page(seed: int = 1, words: int = 8000) -> bytes:
    rng = random.Random(seed)
    body = " ".join(f"word{rng.randint(0, 9999)}" for _ in range(words))
    return f"<html><body><article><p>{body}</p></article></body></html>".encode()


def files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_get_roundtrip_by_sha256(tmp_path):
    store = Snapshots(tmp_path)
    data = "Grüße — every byte kept \x00\xff".encode() + page()
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert digest in store and store.get(digest) == data
    assert Snapshots(tmp_path).get(digest) == data, "a new instance reads what an earlier one wrote"
    assert store.get_text(store.put("héllo".encode())) == "héllo"


def test_same_content_is_stored_once(tmp_path):
    store = Snapshots(tmp_path)
    first = store.put(page())
    [path] = files(tmp_path)
    inode, mtime = path.stat().st_ino, path.stat().st_mtime_ns
    assert store.put(page()) == first and store.put(page(), base=first) == first
    assert files(tmp_path) == [path]
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (inode, mtime), "never rewritten"


def test_write_leaves_no_temporary_files(tmp_path):
    store = Snapshots(tmp_path)
    base = store.put(page(1))
    store.put(page(2))
    store.put(page(1).replace(b"word", b"Word", 1), base=base)
    assert len(files(tmp_path)) == 3
    assert all(p.name.endswith(".zst") and not p.name.startswith(".") for p in files(tmp_path))


def test_failed_write_leaves_neither_temp_file_nor_partial_blob(tmp_path, monkeypatch):
    store = Snapshots(tmp_path)

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(monitor.snapshots.os, "replace", crash)
    with pytest.raises(OSError):
        store.put(page())
    assert files(tmp_path) == []
    assert hashlib.sha256(page()).hexdigest() not in store


def test_missing_file_raises_clear_error(tmp_path):
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(SnapshotError, match=rf"{digest[:12]}.*missing"):
        Snapshots(tmp_path).get(digest)


def test_flipped_byte_in_the_body_raises_clear_error(tmp_path):
    store = Snapshots(tmp_path)
    digest = store.put(page())
    path = store.path(digest)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match=rf"{digest[:12]}.*damaged"):
        store.get(digest)


@pytest.mark.parametrize("kind", ["plain", "delta"])
def test_any_single_bit_flip_is_reported_as_damage(tmp_path, kind):
    """Whatever bit of a stored file flips, reading gives the exact data back or a SnapshotError."""
    store = Snapshots(tmp_path)
    original = page(words=300)
    base = store.put(original)
    data, digest = original, base
    if kind == "delta":
        data = original.replace(b"word", b"WORD", 1)
        digest = store.put(data, base=base)
        assert store.base_of(digest) == base
    path = store.path(digest)
    good = path.read_bytes()
    wrong = []
    for pos in range(len(good)):
        for bit in range(8):
            raw = bytearray(good)
            raw[pos] ^= 1 << bit
            path.write_bytes(bytes(raw))
            try:
                assert store.get(digest) == data
            except SnapshotError:
                pass
            except Exception as exc:  # noqa: BLE001 - anything else is the bug being looked for
                wrong.append(f"byte {pos} bit {bit}: {type(exc).__name__}: {exc}")
    path.write_bytes(good)
    assert not wrong, f"{len(wrong)} flips raised something other than SnapshotError, e.g. {wrong[:3]}"


def test_delta_against_a_base_is_small_and_reads_back_exactly(tmp_path):
    store = Snapshots(tmp_path)
    v1 = page()
    v2 = v1.replace(b"word1", b"edited-word1", 1)
    base = store.put(v1)
    plain_size = store.path(base).stat().st_size
    digest = store.put(v2, base=base)
    assert store.base_of(digest) == base
    assert store.path(digest).stat().st_size < plain_size / 20
    assert Snapshots(tmp_path).get(digest) == v2


def test_delta_is_not_used_when_the_base_is_unrelated(tmp_path):
    store = Snapshots(tmp_path)
    base = store.put(page(1))
    digest = store.put(page(2), base=base)
    assert store.base_of(digest) is None and store.get(digest) == page(2)


def test_keyframe_never_returns_a_delta(tmp_path):
    store = Snapshots(tmp_path)
    v1 = page()
    v2 = v1.replace(b"word1", b"WORD1", 1)
    v3 = v2.replace(b"word2", b"WORD2", 1)
    plain = store.put(v1)
    delta = store.put(v2, base=plain)
    delta_of_delta = store.put(v3, base=delta)
    assert store.base_of(delta) == plain and store.base_of(delta_of_delta) == delta
    assert store.keyframe(plain) == plain
    assert store.keyframe(delta) == plain
    assert store.keyframe(delta_of_delta) is None
    assert store.keyframe(None) is None and store.keyframe(hashlib.sha256(b"absent").hexdigest()) is None
    assert store.get(delta_of_delta) == v3
