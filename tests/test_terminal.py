"""The one terminal view (strideclip.views.terminal) of `live` and the demo: every clip's row on
one line at 80 columns, the essential columns kept, and the same row off a terminal."""
import io

from rich.console import Console

from strideclip.session.pipeline import Session
from strideclip.sim import simulate, steady_run
from strideclip.stream.packets import encode_packet
from strideclip.views.terminal import COLUMNS, TerminalView, row


def _values(name: str) -> dict:
    run = simulate(steady_run(1, seed=4))
    s = Session()
    s.feed(encode_packet(run.hello), 0)
    for t_ms, pkt in run.link.packets:
        s.feed(pkt, t_ms)
    v = s.live_values()
    v.update(name=name, connected=True, reconnects=0, rtt_ms=41.0, rssi_dbm=-67, battery_pct=88, error=None)
    return v


def _render(rows: list[dict], width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width).print(TerminalView(title="StrideClip live", live=False).render(rows, width=width))
    return out.getvalue().splitlines()


def test_every_clip_fits_one_line_at_80_columns_and_all_columns_show_when_wide():
    rows = [_values("athlete-1"), _values("Ana's clip")]
    narrow = _render(rows, 80)
    assert max(len(line) for line in narrow) <= 80
    for v in rows:  # each clip's row on one line, with its cadence and its link state
        line = next(line for line in narrow if v["name"] in line)
        assert f"{v['cadence_spm']:.0f}" in line and "ok" in line and v["fatigue"] in line
    assert "RSSI" not in "\n".join(narrow)
    wide = "\n".join(_render(rows, 200))
    for header, _name, _show, _keep in COLUMNS:
        assert all(word in wide for word in header.split("\n"))
    assert "-67" in wide and "88" in wide


def test_off_a_terminal_the_printed_line_names_every_column(capsys):
    v = _values("athlete-1")
    TerminalView(title="t", live=False).update([v], heading=["heading line"], print_now=True)
    out = capsys.readouterr().out
    assert out.startswith("heading line\n")
    assert all(f"{name}={x}" in out for (_h, name, _s, _k), x in zip(COLUMNS, row(v)))


def test_on_a_terminal_it_draws_at_most_once_a_second_and_only_what_changed(monkeypatch):
    from strideclip.views import terminal

    now = [1000.0]
    monkeypatch.setattr(terminal.time, "monotonic", lambda: now[0])
    console = Console(file=io.StringIO(), width=80, force_terminal=True)
    view = TerminalView(title="StrideClip live", live=True, console=console)
    draws = []
    v = _values("athlete-1")
    with view:
        monkeypatch.setattr(view._rich, "update", lambda *a, **k: draws.append(now[0]))
        view.update([v])
        assert draws == [1000.0]
        now[0] += 0.5
        view.update([dict(v, cadence_spm=v["cadence_spm"] + 3)])  # changed, but within the second: not yet
        now[0] += 0.6
        view.update([v])  # a second on, unchanged: nothing to draw
        now[0] += 1.0
        view.update([dict(v, cadence_spm=v["cadence_spm"] + 3)])
        assert draws == [1000.0, 1002.1]
        view.update([v], final=True)  # the last state is always drawn
        assert len(draws) == 3


def test_live_clips_are_read_only_when_the_view_draws(monkeypatch):
    from strideclip.views import terminal

    now = [50.0]
    monkeypatch.setattr(terminal.time, "monotonic", lambda: now[0])

    class Clip:
        reads = 0

        def values(self):
            Clip.reads += 1
            return _values("athlete-1")

    view = TerminalView(title="t", live=False)
    for _ in range(5):  # run_clips calls it every half second; off a terminal it prints every PRINT_S
        view.show_clips([Clip()])
        now[0] += 0.5
    assert Clip.reads == 1


def test_a_terminal_shows_the_clips_that_fit_its_height_link_trouble_first():
    """100 clips on a 25-line terminal: the rows that fit, a clip whose link failed among them,
    a line saying how many are shown; only those clips are read. Off a terminal every clip prints."""
    from types import SimpleNamespace

    values = _values("x")
    read = []

    class Clip:
        def __init__(self, k, error=None):
            self.name, self.link = f"athlete-{k}", SimpleNamespace(error=error, connected=error is None)

        def values(self):
            read.append(self.name)
            return dict(values, name=self.name, error=self.link.error, connected=self.link.connected)

    clips = [Clip(k) for k in range(1, 100)] + [Clip(100, error="athlete-100 vanished")]
    out = io.StringIO()
    with TerminalView(title="StrideClip live", live=True,
                      console=Console(file=out, width=120, height=25, force_terminal=True)) as view:
        view.show_clips(clips)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    shown = len({ln.split()[0] for ln in lines if ln.split()[0].startswith("athlete-")})  # (Live draws twice)
    assert 15 <= shown == len(read) < 25  # the rows that fit, and only they were read
    assert "athlete-100" in read and read[0] == "athlete-100"
    assert any(f"{shown} of 100 clips shown" in ln for ln in lines)

    read.clear()
    printed = io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(printed):
        TerminalView(title="t", live=False).show_clips(clips)
    assert len(read) == 100
