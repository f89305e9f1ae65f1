"""The examples in the pure modules' docstrings are true (they are documentation a reader trusts)."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["monitor.addresses", "monitor.decoding", "monitor.detect", "monitor.diff", "monitor.pace", "monitor.words", "monitor.kinds", "monitor.times", "monitor.read", "monitor.chain", "monitor.wayback", "monitor.blobs"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
