"""The simulator's scene, prepared by one task and read by the ranks that render."""

import threading

import pytest

from lod3d.aoi import aoi
from lod3d.simulate.acquisition import _Shared, simulate


def test_a_part_made_in_one_process_is_read_in_another(tmp_path):
    maker, reader = _Shared(tmp_path), _Shared(tmp_path)
    maker.make(lambda: {"scene": {"a": 1}, "views": [2, 3]})
    assert reader.get("views") == [2, 3] and reader.get("scene") == {"a": 1}
    maker.remove(["scene", "views"])
    assert not list(tmp_path.iterdir())


def test_a_reader_waits_for_the_part_and_fails_when_making_it_failed(tmp_path):
    maker, reader = _Shared(tmp_path), _Shared(tmp_path, poll_s=0.001)
    got = []
    waiting = threading.Thread(target=lambda: got.append(reader.get("scene")))
    waiting.start()
    maker.make(lambda: {"scene": 7})
    waiting.join(timeout=10)
    assert got == [7]

    def broken():
        raise ValueError("no scene")

    failed = tmp_path / "failed"
    failed.mkdir()
    with pytest.raises(ValueError):
        _Shared(failed).make(broken)
    with pytest.raises(RuntimeError, match="no scene"):
        _Shared(failed, poll_s=0.001).get("scene")
    with pytest.raises(RuntimeError, match="before it was made"):
        _Shared(None).get("scene")


def test_the_scene_is_prepared_first_then_the_side_tasks_run(tmp_path):
    seen = []

    def map_tasks(tasks, fn):
        seen.append(list(tasks))
        return [fn(t) for t in tasks]

    side = [lambda: seen.append("side")]
    result = simulate(aoi("toulouse"), tmp_path / "sim", size_m=40, seed=3, views=2, map_tasks=map_tasks,
                      side_tasks=side)
    assert seen[0][:2] == ["scene", side[0]] and seen[0][2:] == [0, 1, 2] and seen[1] == "side"
    assert seen[2] == ["quicklooks", "truth", "images"]
    # The shared scene files are gone from the finished output.
    assert not [p for p in (tmp_path / "sim").iterdir() if p.name.startswith(".")]
    assert len(result.images) == 2 and all(p.exists() for p in result.images)
