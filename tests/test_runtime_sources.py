"""Decoding ahead of inference: order kept, work done in background threads, look-ahead bounded."""

from __future__ import annotations

import threading

import pytest

from dpiqa_edge.runtime.sources import batched, prefetch


@pytest.mark.parametrize("workers, ahead", [(0, 4), (1, 1), (2, 3), (3, 16)])
def test_prefetch_keeps_order_and_bounds_lookahead(workers, ahead):
    started: list[int] = []
    consumed: list[int] = []
    threads: set[str] = set()
    lock = threading.Lock()
    worst = [0]

    def work(i):
        with lock:
            started.append(i)
            threads.add(threading.current_thread().name)
            worst[0] = max(worst[0], len(started) - len(consumed))
        return i * i

    for v in prefetch(range(40), work, workers=workers, ahead=ahead):
        consumed.append(v)
    assert consumed == [i * i for i in range(40)]
    # never more than `ahead` items decoded and not yet consumed (+1: the one being handed over)
    assert worst[0] <= ahead + 1
    if workers:
        assert all(name.startswith("dpiqa-decode") for name in threads)  # off the inference thread
    else:
        assert threads == {threading.current_thread().name}


def test_prefetch_stops_early_without_running_everything():
    ran = []
    gen = prefetch(range(1000), lambda i: ran.append(i) or i, workers=2, ahead=4)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert len(ran) < 20  # abandoning the stream cancels the queued work


def test_batched():
    assert [len(b) for b in batched(range(10), 4)] == [4, 4, 2]
    assert list(batched([], 3)) == []


def test_unlistable_folder_is_a_named_failure(tmp_path, monkeypatch):
    from pathlib import Path

    from dpiqa_edge.runtime.sources import expand_inputs

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.jpg").write_bytes(b"x")
    (tmp_path / "locked").mkdir()
    real = Path.rglob

    def rglob(self, pattern):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied")
        return real(self, pattern)

    monkeypatch.setattr(Path, "rglob", rglob)
    srcs = expand_inputs([str(tmp_path / "locked"), str(tmp_path / "ok")])
    assert [(s.kind, Path(s.name).name) for s in srcs] == [("error", "locked"), ("image", "a.jpg")]
    assert "cannot be listed" in srcs[0].error and "Permission denied" in srcs[0].error
