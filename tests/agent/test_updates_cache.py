"""plumb:AvailableUpdate answered from the agent's cache while nothing apt reads has changed."""

from __future__ import annotations

import os
import time

from agent.collectors import updates


def _touch(path, text):
    path.write_text(text)
    stamp = time.time_ns() + 1_000_000_000  # a later mtime, whatever the clock's resolution
    os.utime(path, ns=(stamp, stamp))


def test_the_signature_follows_every_file_apt_reads(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    status = tmp_path / "status"
    _touch(status, "Package: a\n")
    paths = [str(status), str(lists)]
    first = updates.signature(paths)
    assert updates.signature(paths) == first
    _touch(lists / "deb_Release", "Suite: x\n")  # a new list
    second = updates.signature(paths)
    assert second != first
    _touch(status, "Package: a\nPackage: b\n")  # dpkg installed something
    assert updates.signature(paths) != second
    (lists / "partial").mkdir()  # apt's scratch directory does not count
    assert updates.signature(paths) == updates.signature(paths)


def test_a_result_is_reused_only_under_the_same_key(tmp_path):
    inputs = tmp_path / "status"
    _touch(inputs, "x")
    cache = updates.ResultCache(str(tmp_path / "cache"), [str(inputs)], [])
    assert cache.read() is None
    cache.write([{"Name": "a"}])
    assert updates.ResultCache(str(tmp_path / "cache"), [str(inputs)], []).read() == [{"Name": "a"}]
    _touch(inputs, "changed")
    assert updates.ResultCache(str(tmp_path / "cache"), [str(inputs)], []).read() is None
    assert updates.ResultCache("", [str(inputs)], []).read() is None  # no cache directory: never cached
