"""The clip's main loop: FIFO -> samples out (BLE or USB serial) -> step detector -> cue policy.

One pass (``App.poll``) moves everything the IMU's FIFO holds: each sample goes into the packet
being filled (and, with the packet, into the backfill store); the batch goes through the
clipcore step detector; each step is sent as a STEP event and offered to the clipcore cue
policy, which may start the metronome when no host is connected. Then commands from the host
are answered, a backfill under way sends its next packets and the haptics are advanced. Buffers
are made once: the per-sample path allocates nothing (tests/test_firmware.py checks it under
heap_lock).

The sample index counts from 0 at boot; a FIFO overrun skips the index forward by the samples
the chip dropped (estimated from the time since the last read) and says so in a STATUS packet.
An I2C error is reported (once per outage) and the chip read again on the next pass: its FIFO
kept the samples. A chip that stops sampling (reset by a power glitch: it comes back powered
down) is set up again after a second without samples, and the time it missed is skipped the
same way.
"""
import array
import time

from clipcore import cues
from clipcore import wire as P
from clipcore import steps

from clipfw import FW_VERSION
from clipfw.backfill import Backfill

MAX_BATCH = 64  # samples moved per FIFO read (~0.3 s at 208 Hz) ...
MAX_READS = 4  # ... and reads per pass while the FIFO still holds more (a slow pass: flash erases)
MAX_EVENTS = 8
IMU_SILENT_MS = 1000  # no sample for this long from a chip that answers: it was reset, set it up again


def make_buffers(cfg):
    """The app's buffers. The clip makes them first thing at boot, before the heap is broken up
    by loading the other modules (board.py); the same objects are used forever."""
    spp = cfg["samples_per_packet"]
    return (P.SampleBatcher(spp), array.array("h", bytes(12 * MAX_BATCH)),
            bytearray(P.FRAME_OVERHEAD_BYTES + 512),  # one frame: the largest clip packet is 236 bytes
            # The LSM6 family's sensitivity at this range: App reconfigures only if the chip differs.
            steps.StepDetector(cfg["sample_rate_hz"], 61 * cfg["accel_fs_g"] // 2, MAX_EVENTS),
            bytearray(P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * spp),  # a packet being re-sent (backfill)
            bytearray(32))  # event packets


class App:
    def __init__(self, cfg, imu, link, *, clip_id=0, session_id=1, haptics=None, backfill_dir=None,
                 ticks_ms=time.ticks_ms, buffers=None, log=None, battery=None, reset_cause=0):
        self.cfg = cfg
        self.imu = imu
        self.link = link
        self.haptics = haptics
        self.ticks_ms = ticks_ms
        rate = cfg["sample_rate_hz"]
        imu.configure(rate, cfg["accel_fs_g"], cfg["gyro_fs_dps"])
        self.rate_hz = rate
        # HELLO fields in the order of clipcore.protocol.Hello (a list: the battery changes in place)
        self.hello = [FW_VERSION, imu.MODEL, rate, cfg["accel_fs_g"], cfg["gyro_fs_dps"], imu.accel_ug_per_lsb,
                      imu.gyro_mdps_per_lsb_q8, clip_id, session_id, P.BATTERY_UNKNOWN,
                      cfg["samples_per_packet"], P.HELLO_FLAG_BACKFILL]
        b = buffers or make_buffers(cfg)
        self.batcher, self.fifo, self.out, self.detector, backfill_buf, self.small = b
        self.detector.configure(rate, imu.accel_ug_per_lsb)
        self.cue_cfg = cues.make_config(rate)
        self.cue_state = cues.make_state()
        self.backfill = Backfill(cfg["backfill_s"], rate, cfg["samples_per_packet"], backfill_dir, backfill_buf)
        self.idx = 0  # index of the next sample
        self.packets = 0
        self.steps = 0
        self.cues = 0
        self.last_read_ms = ticks_ms()
        self.backlog = 0
        self.imu_failures = 0  # passes in a row whose FIFO read failed
        self.last_sample_ms = self.last_read_ms
        self.imu_silent = False  # the chip made nothing for IMU_SILENT_MS and was set up again
        self.streaming = True
        self.log = log  # clipfw.flashlog.FlashLog: the run goes to flash while no host listens
        self.logs = None  # clipfw.logsync.LogServer, made on the first log command
        self.battery = battery  # clipfw.battery.Battery, or None
        self.battery_pct = P.BATTERY_UNKNOWN
        self.next_battery_ms = ticks_ms()
        self.packet_lengths = (P.HELLO_BYTES, P.STEP_BYTES, P.CUE_BYTES, P.STATUS_BYTES, P.RESULT_BYTES,
                               P.SAMPLES_HEADER_BYTES + P.SAMPLE_BYTES * cfg["samples_per_packet"])
        link.prepare(self.out, self.packet_lengths)
        if log:
            log.prepare(self.packet_lengths)
        self.send_packet(self.small, self.publish_hello())
        self._status(P.STATUS_BOOT, reset_cause)

    def publish_hello(self):
        """The HELLO into self.small and onto the link (readable over BLE); its length."""
        n = P.pack_hello(self.small, self.hello)
        self.link.set_hello(self.small, n)
        return n

    # -- output -------------------------------------------------------------------------------
    def send_packet(self, pkt, n):
        delivered = self.link.send(pkt, n)
        log = self.log
        # Whatever no host received goes to flash: every sample is on one side or the other.
        if log is not None and not log.full and not (delivered and self.link.host_connected()):
            if not log.packet(pkt, n):  # the flash just filled up: say so, once, in the log and to a host
                n = P.pack_status(self.small, self.idx, P.STATUS_FLASH_FULL, log.bytes)
                log.last_word(self.small, n)
                self.link.send(self.small, n)

    def _status(self, code, value):
        self.send_packet(self.small, P.pack_status(self.small, self.idx, code, value))

    def recovered(self, where):
        """An error was caught at `where` (P.ERROR_*) and the clip carries on: say so."""
        try:
            self._status(P.STATUS_ERROR, where)
        except Exception:  # noqa: BLE001  (reporting must never be what stops the clip)
            pass

    # -- one pass of the loop -----------------------------------------------------------------
    def poll(self):
        now = self.ticks_ms()
        n = 0
        for _ in range(MAX_READS):  # until the FIFO is empty: a slow pass must not leave it filling up
            got = self._read(now)
            if got:
                self._samples(got)
                self._detect(got)
            n += got
            if got < MAX_BATCH or self.backlog <= 0:
                break
        self.link.poll(self)
        if self.backfill.sending:
            self.backfill.pump(self)
        if self.logs is not None:
            self.logs.pump(self.link)
        if self.log is not None:
            self.log.tick(now)
        if self.battery and time.ticks_diff(now, self.next_battery_ms) >= 0:
            self.battery.report(self, now)
        if self.haptics:
            self.haptics.tick(now)
        return n

    def _read(self, now):
        """Move what the FIFO holds into self.fifo; 0 if the chip did not answer (said once
        per outage in a STATUS; the samples wait in its FIFO for the next pass)."""
        imu = self.imu
        try:
            n = imu.read(self.fifo, MAX_BATCH)
            if n == 0 and time.ticks_diff(now, self.last_sample_ms) > IMU_SILENT_MS:
                # It answers but makes nothing: reset by a glitch. Set it up again; what it
                # missed is skipped (a gap the host sees), and the STATUS says why (value 0).
                imu.configure(self.rate_hz, self.cfg["accel_fs_g"], self.cfg["gyro_fs_dps"])
                if not self.imu_silent:  # said once, however long it stays silent
                    self._status(P.STATUS_IMU_ERROR, 0)
                self.imu_silent = True
                self.last_read_ms, self.backlog = self.last_sample_ms, 0  # it was silent since then
                self._skip(now, 0, True)
                self.last_sample_ms = now
                return 0
        except OSError as e:
            if self.imu_failures == 0:
                self._status(P.STATUS_IMU_ERROR, e.errno if isinstance(e.errno, int) else 0)
            self.imu_failures += 1
            return 0
        self.imu_failures = 0
        if imu.overrun:
            self._skip(now, imu.level, False)
        self.backlog = imu.level - n  # left in the FIFO for the next pass
        self.last_read_ms = now
        if n:
            self.last_sample_ms = now
            self.imu_silent = False
        return n

    def _samples(self, n):
        b = self.batcher
        done = 0
        while done < n:
            done += b.fill(self.fifo, done, n - done)
            if b.count == b.capacity:
                self._packet_out()
        self.idx += n

    def _packet_out(self):
        """The packet in hand (full, or cut short before a hole) is kept and sent."""
        b = self.batcher
        n_pkt = b.packet_len()
        self.backfill.keep(b.buf, self)
        if self.streaming:
            self.send_packet(b.buf, n_pkt)
        self.packets += 1
        b.next_packet()

    def _detect(self, n):
        done = 0
        det = self.detector
        while done < n:
            n_ev = det.feed(self.fifo, done, n - done)
            done += det.consumed
            ev = det.events
            for k in range(n_ev):
                e = k * steps.EV_FIELDS
                self._step(ev[e + steps.E_IC], ev[e + steps.E_SIDE], ev[e + steps.E_IMPACT_MG],
                           ev[e + steps.E_STEP_SAMPLES], ev[e + steps.E_ROT], ev[e + steps.E_FLAGS])

    def _step(self, ic_idx, side, impact_mg, step_samples, rot, flags):
        self.steps += 1
        self.send_packet(self.small, P.pack_step(self.small, ic_idx, side, min(impact_mg, 0xFFFF),
                                                 min(step_samples, 0xFFFF), flags))
        reason = cues.on_step(self.cue_cfg, self.cue_state, ic_idx, step_samples, flags & steps.FLAG_RUNNING, rot)
        if reason and self.cfg["standalone_cues"] and not self.link.host_connected():
            tempo = self.cue_state[cues.TEMPO_SPM]
            seconds = self.cue_state[cues.CUE_S]
            self.cues += 1
            if self.haptics:
                self.haptics.metronome(tempo, seconds)
            self.send_packet(self.small, P.pack_cue(self.small, ic_idx, P.CUE_METRONOME_START, reason, P.SOURCE_CLIP,
                                                    tempo, seconds))

    def _skip(self, now, level, restarted):
        """Samples were lost (the FIFO overflowed, or the chip started afresh): skip the index by
        them. Since the last read the chip made `elapsed x rate` samples; with what was left over
        then, all but what it holds now are lost."""
        produced = time.ticks_diff(now, self.last_read_ms) * self.rate_hz // 1000
        lost = self.backlog + produced - level
        if lost > 0:
            b = self.batcher
            if b.count:  # a packet cannot hold a hole: send the one in hand short
                self._packet_out()
            self.idx += lost
            b.first_idx = self.idx
            self.detector.resync(self.idx)
        if not restarted:
            self._status(P.STATUS_FIFO_OVERFLOW, max(lost, 0))
        self.last_read_ms = now

    def flush(self):
        """Send the samples of the packet in hand (when streaming stops or the app ends)."""
        if self.batcher.count:
            self._packet_out()

    def close(self):
        """The app is stopped (Ctrl-C): what is in hand goes out and the log is closed whole."""
        self.flush()
        if self.log is not None:
            self.log.close()
        self.backfill.close()
        if hasattr(self.link, "close"):
            self.link.close()

    # -- commands from the host ---------------------------------------------------------------
    def command(self, pkt, authenticated=True):
        """Answer one control write; returns the RESULT packet's length (in self.small).
        Nothing changes unless the whole command is valid."""
        cmd_id = pkt[1] if len(pkt) > 1 else 0
        opcode = pkt[2] if len(pkt) > 2 else 0
        code = P.command_result_code(pkt)
        detail = 0
        if code == P.RESULT_OK and not authenticated:
            code = P.RESULT_NOT_AUTHENTICATED
        if code == P.RESULT_OK:
            code, detail = self._act(P.parse_command(pkt))
        return P.pack_result(self.small, cmd_id, opcode, code, detail)

    def _act(self, cmd):
        _, op, args = cmd
        if op == P.OP_START_STREAM:
            self.streaming = True
        elif op == P.OP_STOP_STREAM:
            self.flush()
            self.streaming = False
        elif op == P.OP_HELLO:
            self.send_packet(self.small, P.pack_hello(self.small, self.hello))
        elif op == P.OP_SET_CONFIG:
            return self._set_config(args[0], args[1])
        elif op == P.OP_BACKFILL:
            # The RESULT goes first (detail: the samples that will come), then the packets a few
            # per pass (paced under the link's buffers), then a STATUS backfill_done.
            first_idx, count = args
            if not self.backfill.covers(first_idx, count):
                return P.RESULT_UNAVAILABLE, self.backfill.oldest_idx()
            coming = self.backfill.start(first_idx, count)
            return (P.RESULT_OK, coming) if coming >= 0 else (P.RESULT_BUSY, 0)  # busy: asked again later
        elif op == P.OP_LOG_LIST or op == P.OP_LOG_READ or op == P.OP_LOG_DELETE:
            if self.logs is None:
                from clipfw.logsync import LogServer

                self.logs = LogServer(self.log.dir if self.log else self.cfg["log_dir"], self.log)
            return self.logs.command(op, args)
        elif op in (P.OP_BUZZ, P.OP_METRONOME_START, P.OP_METRONOME_STOP):
            if self.haptics is None:
                return P.RESULT_UNAVAILABLE, 0
            if op == P.OP_BUZZ:
                self.haptics.buzz(args[0], args[1], args[2], args[3])
                self._host_cue(P.CUE_BUZZ, 0, 0)
            elif op == P.OP_METRONOME_START:
                self.haptics.metronome(args[0], args[1])
                self._host_cue(P.CUE_METRONOME_START, args[0], args[1])
            else:
                self.haptics.stop()
                self._host_cue(P.CUE_METRONOME_STOP, 0, 0)
        return P.RESULT_OK, 0

    def _host_cue(self, kind, tempo, seconds):
        """A cue the host asked for is played: the CUE event says so (source: host)."""
        self.send_packet(self.small, P.pack_cue(self.small, self.idx, kind, P.REASON_MANUAL, P.SOURCE_HOST, tempo, seconds))

    def _set_config(self, key, value):
        """Cue settings by number (docs/protocol.md, SET_CONFIG keys); the old value stays on error."""
        code = cues.set_config(self.cue_cfg, key, value)
        if code != P.RESULT_OK:
            return code, key
        self._status(P.STATUS_CONFIG_CHANGED, key)
        return P.RESULT_OK, value


def main(config_path="/config.json"):
    """The clip's boot path (firmware/main.py)."""
    from clipfw import board

    board.run(config_path)
