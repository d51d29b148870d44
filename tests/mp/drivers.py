"""Multi-step clipcore scenarios for parity tests; run under MicroPython and CPython alike."""
from clipcore import protocol as P


def batch_stream(samples, per_packet, first_idx, seq0):
    """Feed samples through a SampleBatcher; return every packet it produced."""
    b = P.SampleBatcher(per_packet, first_idx)
    b.seq = seq0
    out = []
    for s in samples:
        if b.add(s[0], s[1], s[2], s[3], s[4], s[5]):
            out.append(bytes(b.packet()))
            b.next_packet()
    if b.count:
        out.append(bytes(b.packet()))
    return out


def fill_stream(samples, per_packet, first_idx, seq0, block):
    """The same through SampleBatcher.fill, fed blocks of a flat int16 array (the clip's path)."""
    import array

    flat = array.array("h", [v for s in samples for v in s])
    b = P.SampleBatcher(per_packet, first_idx)
    b.seq = seq0
    out = []
    done = 0
    n = len(samples)
    while done < n:
        k = min(block, n - done)
        taken = 0
        while taken < k:
            taken += b.fill(flat, done + taken, k - taken)
            if b.count == b.capacity:
                out.append(bytes(b.packet()))
                b.next_packet()
        done += k
    if b.count:
        out.append(bytes(b.packet()))
    return out


def frame_all(packets):
    """Frame packets back to back with frame_into, as the clip's serial and flash log do."""
    size = 0
    for p in packets:
        size += len(p) + P.FRAME_OVERHEAD_BYTES
    out = bytearray(size)
    pos = 0
    for p in packets:
        pos = P.frame_into(out, pos, p, len(p))
    return bytes(out)


def deframe(stream, chunk):
    """Feed a byte stream in chunks; return (packets, dropped_bytes, bad_frames)."""
    d = P.Deframer()
    out = []
    pos = 0
    while pos < len(stream):
        d.feed(stream[pos : pos + chunk])
        pos += chunk
        while True:
            p = d.next_packet()
            if p is None:
                break
            out.append(p)
    while True:
        p = d.next_packet(True)
        if p is None:
            break
        out.append(p)
    return out, d.dropped_bytes, d.bad_frames


def decode_all(packets):
    """Decode each packet; an error becomes [class name, message]."""
    out = []
    for p in packets:
        try:
            out.append(P.decode(p))
        except P.ProtocolError as e:
            out.append([type(e).__name__, str(e)])
    return out


def runtime():
    import sys

    return sys.implementation.name


def detect(raw, rate_hz, ug_per_lsb, chunk, resync_at):
    """Run the step detector over int16 sample bytes in chunks; resync once at sample resync_at
    (-1: never). Returns every event as a list of EV_FIELDS ints."""
    import array

    from clipcore import steps as S

    samples = array.array("h", raw)
    det = S.StepDetector(rate_hz, ug_per_lsb, 4)
    n = len(samples) // 6
    out = []
    pos = 0
    while pos < n:
        take = chunk if pos + chunk <= n else n - pos
        if pos <= resync_at < pos + take:
            take = resync_at - pos
            if take == 0:
                det.resync(resync_at)
                take = chunk if pos + chunk <= n else n - pos
        k = det.feed(samples, pos, take)
        for i in range(k):
            out.append([det.events[i * S.EV_FIELDS + f] for f in range(S.EV_FIELDS)])
        pos += det.consumed
    return out


def cue_run(steps, rate_hz):
    """Feed (ic_idx, step_samples, running, rot) tuples to the cue policy; return its answers."""
    from clipcore import cues as C

    cfg = C.make_config(rate_hz)
    st = C.make_state()
    out = []
    for ic, step, running, rot in steps:
        reason = C.on_step(cfg, st, ic, step, running, rot)
        out.append([reason, st[C.TEMPO_SPM]] if reason else 0)
    return [out, [st[i] for i in range(C.N_STATE)]]
