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
