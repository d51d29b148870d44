"""Recording a clip's packets as they arrive: into the session log first (crash-safe), then
through the pipeline, with what the host noticed (gaps, the cues its policy decided) logged as
host events. The demo and `strideclip record` both record this way. A decided cue is logged
`cue_decided`; `cue_sent` only once a clip acknowledged it (session/live.py). The clip's own cues
are in its packets."""
from __future__ import annotations

from clipcore import logrecord as L
from clipcore import protocol as P
from strideclip.session.pipeline import Session
from strideclip.stream.decode import Gap
from strideclip.stream.logwriter import SessionLogWriter


def log_packet(log: SessionLogWriter, pkt: bytes, t_ms: int | None = None) -> None:
    """A clip's packet into the log as it arrives (a gateway's log holds only these and its events)."""
    if len(pkt) + L.RECORD_PREFIX_BYTES <= P.MAX_PACKET_BYTES:
        log.clip_packet(pkt, t_ms=t_ms)  # recorded from the first frame, as it arrives
    else:  # longer than any clip packet (a serial frame can be) and than a record holds: said, not kept
        log.host_event("packet_too_long", t_ms=t_ms, bytes=len(pkt))


def record_packet(log: SessionLogWriter, session: Session, pkt: bytes, t_ms: int) -> list:
    log_packet(log, pkt, t_ms)
    n_cues = len(session.cues)
    try:
        outputs = session.feed(pkt, t_ms)
    except Exception as e:  # a fault behind the packet checks (strideclip.stream.schema) must not end a recording
        session.count_failed_packet(e, t_ms)
        log.host_event("packet_error", t_ms=t_ms, error=repr(e))
        return []
    for out in outputs:
        if isinstance(out, Gap):
            log.host_event("gap", t_ms=t_ms, start_idx=out.start_idx, end_idx=out.end_idx,
                           lost_packets=out.lost_packets)
    _log_decided(log, session, n_cues, t_ms)
    return outputs


def finish_recording(log: SessionLogWriter, session: Session, t_ms: int) -> None:
    """The recording ends: what waited for a backfill is analysed (Session.finish), and the cues
    that decides are logged like any other."""
    n_cues = len(session.cues)
    session.finish(t_ms)
    _log_decided(log, session, n_cues, t_ms)


def _log_decided(log: SessionLogWriter, session: Session, n_cues: int, t_ms: int) -> None:
    for cue in session.cues[n_cues:]:
        if cue.source == "host" and not cue.sent:  # not a clip's echo of a command
            log.host_event("cue_decided", t_ms=t_ms, **cue.as_dict())


def backfill_ranges(outputs: list) -> list[tuple[int, int]]:
    """(first_idx, count) for each gap the decoder just reported: exactly the missing range."""
    return [(out.start_idx, out.end_idx - out.start_idx) for out in outputs if isinstance(out, Gap)]
