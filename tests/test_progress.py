"""The progress bar (sweep.io.progress): tqdm on a terminal, nothing elsewhere; a user's callable gets blocks."""

import io

import pytest

import sweep
from sweep.io import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_shows_stages_points_rate_and_eta_on_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    screen = Terminal()
    bar = progress.Bar(screen)
    progress.stage(bar, "compile", 4000)
    for done in (1, 2, 3, 4):
        bar(done, 4, 0.1 * done)
    bar.bar.refresh()
    text = screen.getvalue()
    assert "compile" in text and "blocks" in text and "4.00k/4.00k" in text and "pt/s" in text
    progress.close(bar)
    assert not progress.OPEN_LINE["open"]


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    captured = io.StringIO()
    bar = progress.Bar(captured)
    bar.stage("blocks", 10)
    bar(1, 1, 0.5)
    bar.close()
    assert captured.getvalue() == ""


def test_progress_argument_values():
    assert progress.as_progress(False) is None and progress.as_progress(None) is None
    assert isinstance(progress.as_progress(True), progress.Bar)
    calls = []
    ds = sweep.run(
        {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192]}},
        progress=lambda *a: calls.append(a),
    )
    assert calls[-1][:2] == (1, 1) and ds.tokens_per_watt.size == 1
    with pytest.raises(
        sweep.SweepInputError, match="progress: got 'yes'; allowed: True, False, None or a callable"
    ):
        sweep.run({"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192]}}, progress="yes")
