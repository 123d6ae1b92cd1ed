"""Figure files written together in several processes: the same bytes as one by one, errors kept."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest
from matplotlib.figure import Figure as MplFigure

from report.figure_files import (
    FigureFile,
    _write_turns,
    save_png_svg,
    write_files,
    written_together,
)

RC = {"svg.hashsalt": "test", "svg.fonttype": "path"}


def _figure(k: int, panels: int = 1) -> MplFigure:
    fig = MplFigure(figsize=(2 + k % 3, 2))
    rng = np.random.default_rng(k)
    for i in range(panels):
        ax = fig.add_subplot(1, panels, i + 1)
        ax.plot(rng.random(20), label=f"series {k}")
        ax.set_title(f"figure {k}, panel {i}")
    return fig


def _files(folder, n: int = 5) -> list[FigureFile]:
    files = []
    for k in range(n):
        fig = _figure(k, panels=1 + k % 2)
        files.append(FigureFile(fig, folder / f"f{k}.png", {"dpi": 60}, RC))
        files.append(FigureFile(fig, folder / f"f{k}.svg", {"metadata": {"Date": None}}, RC))
    return files


def _contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="the system cannot fork"
)
def test_two_processes_write_the_same_bytes_as_one(tmp_path):
    write_files(_files(tmp_path / "one"), jobs=1)
    write_files(_files(tmp_path / "two"), jobs=2)
    write_files(_files(tmp_path / "three"), jobs=3)
    one = _contents(tmp_path / "one")
    assert len(one) == 10 and all(len(b) > 500 for b in one.values())
    assert _contents(tmp_path / "two") == one
    assert _contents(tmp_path / "three") == one


def test_written_together_writes_when_the_block_ends(tmp_path):
    with written_together(jobs=2) as collected:
        save_png_svg(_figure(0), tmp_path / "a.png", tmp_path / "a.svg", RC, 60)
        save_png_svg(_figure(1), tmp_path / "b.png", None, RC, 60)
        assert not list(tmp_path.iterdir())  # nothing yet
        assert [f.path.name for f in collected] == ["a.png", "a.svg", "b.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.svg", "b.png"]
    # outside the block: at once
    save_png_svg(_figure(2), tmp_path / "c.png", None, RC, 60)
    assert (tmp_path / "c.png").stat().st_size > 500


def test_nothing_is_written_after_an_error_in_the_block(tmp_path):
    with pytest.raises(ValueError, match="boom"), written_together(jobs=2):
        save_png_svg(_figure(0), tmp_path / "a.png", tmp_path / "a.svg", RC, 60)
        raise ValueError("boom")
    assert not list(tmp_path.iterdir())


def test_a_failed_file_raises_its_own_error_whichever_process_wrote_it(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    bad = [
        FigureFile(_figure(k), tmp_path / "blocker" / f"f{k}.png", {"dpi": 60}, RC)
        for k in range(4)
    ]
    with pytest.raises(OSError):
        write_files(bad, jobs=2)


def test_a_helper_hands_its_error_to_the_parent(tmp_path):
    """What a helper process does with an error: it stops and queues the exception (pickled)."""
    (tmp_path / "blocker").write_text("not a folder")
    files = [
        FigureFile(_figure(0), tmp_path / "ok.png", {"dpi": 60}, RC),
        FigureFile(_figure(1), tmp_path / "blocker" / "bad.png", {"dpi": 60}, RC),
        FigureFile(_figure(2), tmp_path / "never.png", {"dpi": 60}, RC),
    ]
    ctx = multiprocessing.get_context()
    turn, errors = ctx.Value("i", 0), ctx.SimpleQueue()
    _write_turns(files, turn, errors)
    error = pickle.loads(errors.get())
    assert isinstance(error, OSError) and errors.empty()
    assert (tmp_path / "ok.png").is_file() and not (tmp_path / "never.png").exists()
    assert turn.value == 2  # it stopped after the failed file
