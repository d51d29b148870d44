"""One cue, whoever decided it: the clip's own policy, the host running the same policy
(clipcore.cues), or the coach. A session's cue log is a list of these; summaries and logs hold
``as_dict()``. ``sent`` says whether it reached the runner: a clip's own cue played where it was
decided; a host's or coach's cue only once the clip acknowledged the command."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from clipcore import protocol as P

DECIDERS = ("clip", "host", "coach")  # source: who decided it


@dataclass
class Cue:
    t_s: float | None  # on the clip's clock (its sample index / rate); None: before the clip said its rate
    reason: str  # why: a REASON_* name of the protocol, or "manual" (the coach)
    played: str  # what the clip plays: metronome_start, metronome_stop, buzz
    source: str  # who decided it: one of DECIDERS
    tempo_spm: int | None = None
    duration_s: int | None = None  # how long the metronome plays (0: until stopped)
    sent: bool = False  # it reached the clip (a clip's own cue: always)
    error: str | None = None  # why it did not, when it was tried

    @classmethod
    def from_clip(cls, msg: P.Cue, rate_hz: int) -> Cue:
        """A cue the clip reports (its own policy's, or one the host decided, echoed)."""
        return cls(t_s=round(msg.sample_idx / rate_hz, 3) if rate_hz else None,
                   reason=P.REASON_NAMES.get(msg.reason, str(msg.reason)),
                   played=P.CUE_KIND_NAMES.get(msg.kind, str(msg.kind)),
                   source="clip" if msg.source == P.SOURCE_CLIP else "host",
                   tempo_spm=msg.tempo_spm, duration_s=msg.duration_s, sent=True)  # the clip played it

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["error"] is None:
            del d["error"]
        return d


ECHO_LOOKBACK = 8  # an echo is matched among this many newest cues (commands go one at a time)


class CueLog(list):
    """A session's cues in the order they became known, one entry per cue whichever way it is
    learnt. The clip reports every cue it plays (a CUE event): its own decisions, and the host's
    commands (echoes). So the host's copy of a decision and the clip's report of it become one
    entry: a host decision at the step where the clip decided alone is the clip's; an echo marks
    the host's or coach's cue it played as sent."""

    def __init__(self) -> None:
        super().__init__()
        self._echoed: set[int] = set()  # id() of the cues an echo has matched

    def decided(self, cue: Cue) -> Cue | None:
        """The host's policy decided ``cue``; None when the clip already decided it alone."""
        if any(c.source == "clip" and c.t_s == cue.t_s for c in reversed(self[-4:])):
            return None
        self.append(cue)
        return cue

    def coach(self, cue: Cue) -> Cue:
        """The coach asks for ``cue`` (sent once the clip acknowledges: the caller sets ``sent``)."""
        self.append(cue)
        return cue

    def from_clip(self, cue: Cue) -> Cue | None:
        """A cue the clip reports playing; None when it is one the log already holds."""
        if cue.source == "clip":
            for c in reversed(self[-4:]):
                if c.source == "host" and c.t_s == cue.t_s and c.played == cue.played:
                    c.source, c.sent = "clip", True  # the same decision, made by the clip alone
                    return None
        elif cue.t_s is not None:  # an echo of a host's command: the oldest it can be, as commands play in order
            for c in self[-ECHO_LOOKBACK:]:
                if (c.source in ("host", "coach") and c.played == cue.played and id(c) not in self._echoed
                        and c.error is None and c.t_s is not None and c.t_s <= cue.t_s + 1.0):
                    self._echoed.add(id(c))
                    c.sent = True
                    return None
        self._echoed.add(id(cue))  # the clip's own report: no later echo is of it
        self.append(cue)
        return cue
