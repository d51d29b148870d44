"""The simulated clip (tests/blesim/clip.py) that the host's many-clip and faster-than-real-time
BLE tests use, held to the firmware on the rig (tests/rig): the same GATT table, advertising and
scan-response bytes, Device Information, HELLO, and the same packets in answer to the same
commands, byte for byte once the fields that depend on the moment (a sample index, the clip id
of a different address) are set aside."""
import asyncio

import numpy as np

import rig as R
from blesim.clip import SimClip
from blesim.radio import Radio
from clipcore import protocol as P
from rig.air import Air
from strideclip.sim import simulate, steady_run

INFO = ("00002a29-0000-1000-8000-00805f9b34fb", "00002a24-0000-1000-8000-00805f9b34fb",
        "00002a25-0000-1000-8000-00805f9b34fb", "00002a26-0000-1000-8000-00805f9b34fb")


def _command(cmd_id, opcode, *args) -> bytes:
    buf = bytearray(32)
    return bytes(buf[:P.pack_command(buf, cmd_id, opcode, args)])


HDR = P.header_byte(P.T_COMMAND)
SCRIPT = [  # what a host (or a broken one) writes, after pairing
    _command(1, P.OP_HELLO),
    _command(2, P.OP_SET_CONFIG, 1, 170),
    _command(3, P.OP_SET_CONFIG, 1, 999),
    _command(4, P.OP_SET_CONFIG, 99, 1),
    bytes([HDR, 5, 0x7F]),  # unknown opcode
    bytes([HDR, 6, P.OP_METRONOME_START, 1]),  # too short
    bytes([P.header_byte(P.T_STEP)]) + bytes(10),  # not a command
    bytes([0x27, 8, P.OP_HELLO]),  # another protocol version
    _command(9, P.OP_BUZZ, 1, 2, 100, 60),
    _command(10, P.OP_METRONOME_START, 170, 10),
    _command(11, P.OP_METRONOME_STOP),
    _command(12, P.OP_BACKFILL, 208, 416),  # held by both: whole packets, seq from 0, then backfill_done
    _command(13, P.OP_BACKFILL, 0, 10 ** 6),  # more than either holds
]


def normal(pkt: bytes):
    """A packet with the moment it depends on set aside (its sample index; a HELLO's clip id)."""
    m = P.decode(pkt)
    if isinstance(m, (P.Status, P.Cue, P.Step)):
        m = m._replace(sample_idx=0)
    if isinstance(m, P.Hello):
        m = m._replace(clip_id=0)
    return m


async def exchange(client_backend, address: str) -> dict:
    """Connect without pairing (one refused write), pair, then the script: what came back for
    each write (the RESULT and whatever the clip sent with it), in order."""
    from bleak import BleakClient

    client = BleakClient(address, backend=client_backend, timeout=10, pair=False)
    await client.connect()
    got = []

    def on(_c, data):
        m = P.decode(bytes(data))
        if not (isinstance(m, P.Samples) and m.ptype == P.T_SAMPLES or isinstance(m, P.Step)
                or isinstance(m, P.Status) and m.code in (P.STATUS_BATTERY, P.STATUS_BOOT)):
            got.append(bytes(data))  # (live samples, steps and battery reports depend on the moment)

    for uuid in (P.BLE_CONTROL_UUID, P.BLE_EVENTS_UUID, P.BLE_SAMPLES_UUID):
        await client.start_notify(uuid, on)
    out = {"table": sorted((s.uuid, sorted((c.uuid, tuple(sorted(c.properties))) for c in s.characteristics))
                           for s in client.services if s.uuid not in (
                               "00001800-0000-1000-8000-00805f9b34fb", "00001801-0000-1000-8000-00805f9b34fb")),
           "info": [bytes(await client.read_gatt_char(u)).decode() for u in INFO],
           "hello": bytes(await client.read_gatt_char(P.BLE_EVENTS_UUID))}
    answers = []

    async def write(pkt):
        del got[:]
        await client.write_gatt_char(P.BLE_CONTROL_UUID, pkt, response=True)
        for _ in range(60):  # the RESULT, then until 0.5 s pass quiet (a backfill's packets, its STATUS)
            await asyncio.sleep(0.05)
            if any(P.decode(p).__class__ is P.Result for p in got):
                break
        n = -1
        while n != len(got):
            n = len(got)
            await asyncio.sleep(0.5)
        answers.append(list(got))

    await write(_command(0, P.OP_HELLO))  # before pairing
    await client.pair()
    for pkt in SCRIPT:
        await write(pkt)
    await client.disconnect()
    out["answers"] = answers
    return out


def test_the_simulated_clip_answers_as_the_firmware_does(firmware, tmp_path):
    run = simulate(steady_run(0.5, seed=40))

    async def firmware_side():
        air = Air()
        await air.start()
        clip = R.BleClip(air, R.Board(tmp_path / "clip", firmware, {"clip_name": "Ana"}))
        await clip.boot(run.counts, end_ms=21_000)
        await asyncio.sleep(5.0)  # (both hold samples 208..624 when asked)
        got = await exchange(air.client_backend, R.BT_ADDRESS + "/P")
        adv = clip.controller.le_legacy_advertiser
        got["adv"] = bytes(adv.advertising_data), bytes(adv.scan_response_data)
        boot = await clip.finish()
        await air.close()
        assert "crashed" not in boot.report, boot.stderr
        return got

    reference = R.run_async(firmware_side())
    hello = P.decode(reference["hello"])

    async def simulated_side():
        radio = Radio()
        await radio.start()
        clip = SimClip(radio, 1, "Ana", run.counts, hello, battery_pct=hello.battery_pct)
        await clip.start()
        streaming = asyncio.ensure_future(clip.stream())
        await asyncio.sleep(5.0)
        got = await exchange(radio.client_backend, clip.address)
        got["adv"] = radio_adv(radio, clip)
        streaming.cancel()
        return got, clip.clip_id

    simulated, sim_clip_id = R.run_async(simulated_side())
    assert simulated["table"] == reference["table"]
    assert simulated["adv"] == reference["adv"]
    assert simulated["info"][:2] == reference["info"][:2] and simulated["info"][3] == reference["info"][3]
    assert reference["info"][2] == "%08x" % R.CLIP_ID and simulated["info"][2] == "%08x" % sim_clip_id
    assert normal(simulated["hello"]) == normal(reference["hello"]) and P.decode(simulated["hello"]).clip_id == sim_clip_id
    for k, (sim, ref) in enumerate(zip(simulated["answers"], reference["answers"])):
        assert [normal(p) for p in sim] == [normal(p) for p in ref], (k, [P.decode(p) for p in sim], [P.decode(p) for p in ref])
    backfill = [P.decode(p) for p in reference["answers"][12] if P.decode(p).__class__ is P.Samples]
    assert [b.seq for b in backfill] == list(range(len(backfill))) and len(backfill) >= 22  # whole packets from seq 0
    assert np.array_equal(np.concatenate([np.frombuffer(b.data, "<i2").reshape(-1, 6) for b in backfill]),
                          run.counts[backfill[0].first_idx:backfill[-1].first_idx + backfill[-1].count])


def radio_adv(radio: Radio, clip: SimClip) -> tuple[bytes, bytes]:
    """The simulated clip's advertising data and scan response, as its controller holds them."""
    controller = radio.link.find_le_controller(clip.device.random_address)
    (adv_set,) = [s for s in controller.advertising_sets.values() if s.enabled] or \
        [s for s in controller.advertising_sets.values()]
    return bytes(adv_set.data), bytes(adv_set.scan_response_data)
