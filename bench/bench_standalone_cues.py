"""Issue #6, standalone: the fatigue scenarios of `strideclip evaluate-cues` run through the
firmware app under the MicroPython unix port, with no host, and the clip's own cues compared
with the host's (the same clipcore policy on the same steps should give the same cues).

Each run is the firmware as on the clip (files compiled with mpy-cross, heap capped, emulated
IMU fed at register level), writing to a serial file that the host decodes.
Run: .venv/bin/python bench/bench_standalone_cues.py [--seeds 20]
"""
import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from clipcore import protocol as P  # noqa: E402
from strideclip.device import clipbuild  # noqa: E402
from strideclip.evaluation.cues_eval import IN_TIME_S, cues_of, fatigue_scenario, step_events, threshold_s  # noqa: E402
from strideclip.sim import simulate  # noqa: E402
from test_firmware import decoded, run_clip  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    seeds = ap.parse_args().seeds
    same = in_time = 0
    with tempfile.TemporaryDirectory() as tmp:
        lib = clipbuild.build(Path(tmp) / "lib")
        clipbuild.compile_tree(REPO / "tests" / "fw", lib / "test")
        for seed in range(seeds):
            run = simulate(fatigue_scenario(seed))
            work = Path(tmp) / f"s{seed}"
            work.mkdir()
            _summary, packets = run_clip(lib, work, run.counts)
            _dec, _blocks, _gaps, events = decoded(packets)
            clip = [(e.sample_idx / run.rate_hz, P.REASON_NAMES[e.reason]) for e in events if isinstance(e, P.Cue)]
            host = cues_of(step_events(run), run.rate_hz)
            truth = run.fatigue_truth()
            due_s = threshold_s(truth)
            after = [c for c in clip if c[0] >= truth["onset_s"]]
            ok = bool(after and after[0][0] <= due_s + IN_TIME_S and not [c for c in clip if c[0] < truth["onset_s"]])
            same += clip == host
            in_time += ok
            print(f"seed {seed:2d}: clip cues {[(round(t), r) for t, r in clip]}  same as host: {clip == host}  "
                  f"in time: {ok}", flush=True)
    print(f"standalone: {same} of {seeds} runs give the host's cues exactly; {in_time} of {seeds} cued in time "
          f"with no false cue")


if __name__ == "__main__":
    main()
