"""One cue type and one cue log (strideclip.coaching.cue): a cue is one entry whichever way the
host learns it (its own policy, the clip's CUE report, the coach), and `cue_sent` is logged only
for cues that reached a clip."""
from clipcore import protocol as P
from strideclip.coaching.cue import Cue, CueLog
from strideclip.session.pipeline import Session
from strideclip.session.recorder import finish_recording, record_packet
from strideclip.sim import Fatigue, Scenario, Segment, simulate
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.stream.packets import encode_packet
from strideclip.stream.sclog import load_log

RATE_HZ = 208


def _host(t_s: float, played: str = "metronome_start") -> Cue:
    return Cue(t_s=t_s, reason="cadence_drop", played=played, source="host", tempo_spm=166, duration_s=30)


def _clip_report(t_s: float, source: int, kind: int = P.CUE_METRONOME_START) -> Cue:
    reason = P.REASON_MANUAL if source == P.SOURCE_HOST else 1
    return Cue.from_clip(P.Cue(round(t_s * RATE_HZ), kind, reason, source, 166, 30), RATE_HZ)


def test_the_clips_own_cue_and_the_hosts_copy_of_that_decision_are_one_cue():
    log = CueLog()
    assert log.decided(_host(300.0)) is not None
    assert log.from_clip(_clip_report(300.0, P.SOURCE_CLIP)) is None  # the same step: the same decision
    assert len(log) == 1 and log[0].source == "clip" and log[0].sent
    log2 = CueLog()  # the other order: the clip's report first
    log2.from_clip(_clip_report(300.0, P.SOURCE_CLIP))
    assert log2.decided(_host(300.0)) is None and len(log2) == 1
    assert log2.decided(_host(420.0)) is not None and len(log2) == 2  # another step: another cue


def test_a_clips_echo_of_a_command_marks_the_cue_it_played_as_sent_once():
    log = CueLog()
    cue = log.decided(_host(300.0))
    assert not cue.sent
    assert log.from_clip(_clip_report(300.4, P.SOURCE_HOST)) is None and cue.sent and len(log) == 1
    # a second echo has no unplayed cue to match: it is a command the host log does not know
    extra = log.from_clip(_clip_report(301.0, P.SOURCE_HOST))
    assert extra is not None and extra.sent and len(log) == 2
    # an echo of another kind is its own entry; one of a cue whose command failed matches nothing
    late = log.decided(_host(600.0))
    failed = log.decided(_host(610.0))
    failed.error = "the clip did not answer"
    assert log.from_clip(_clip_report(600.2, P.SOURCE_HOST, P.CUE_BUZZ)) is not None and not late.sent
    assert log.from_clip(_clip_report(640.0, P.SOURCE_HOST)) is None and late.sent  # played late, still one cue
    assert log.from_clip(_clip_report(641.0, P.SOURCE_HOST)) is not None and not failed.sent


def test_a_coach_cue_asked_for_before_the_clip_echoes_it_stays_one_cue():
    log = CueLog()
    coach = log.coach(Cue(t_s=100.0, reason="manual", played="metronome_stop", source="coach"))
    assert log.from_clip(_clip_report(100.1, P.SOURCE_HOST, P.CUE_METRONOME_STOP)) is None
    assert coach.sent and len(log) == 1 and coach.as_dict()["source"] == "coach" and "error" not in coach.as_dict()


def test_a_recording_without_a_clip_to_play_them_logs_cues_decided_never_sent(tmp_path):
    sc = Scenario((Segment("walk", 30, speed_mps=1.3), Segment("run", 540, speed_mps=3.3)),
                  fatigue=Fatigue(onset_s=280, cadence_pct_per_min=-2.0, rotation_pct_per_min=1.0), seed=90)
    run = simulate(sc)
    session = Session()
    path = tmp_path / "sim.sclog"
    with SessionLogWriter(path, header={"source": "simulator"}) as log:
        record_packet(log, session, encode_packet(run.hello), 0)
        for t_ms, pkt in run.link.packets:
            record_packet(log, session, pkt, t_ms)
        finish_recording(log, session, t_ms)
    cues = session.summary()["cues"]
    assert cues and all(c["source"] == "host" and not c["sent"] for c in cues)
    events = [e for _t, e in load_log(path).host_events]
    assert [e["t_s"] for e in events if e["event"] == "cue_decided"] == [c["t_s"] for c in cues]
    assert not [e for e in events if e["event"] == "cue_sent"]
    assert session.metronome_now() is None  # nothing reached a clip: nothing plays
