"""The worked examples in docs/protocol.md are true: parsed from the page, checked both ways."""
import json
import re

import numpy as np
import pytest

from clipcore import protocol as P
from mpy import REPO
from strideclip.stream.packets import decode_packet, encode_packet

DOC = (REPO / "docs" / "protocol.md").read_text()
EXAMPLES = [dict(line.split(": ", 1) for line in block.strip().splitlines())
            for block in re.findall(r"```example\n(.*?)```", DOC, re.S)]


def _bytes(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.replace(" ", ""))


def _fields(msg) -> dict:
    d = msg._asdict()
    if isinstance(msg, P.Samples):
        d["data"] = np.frombuffer(bytes(msg.data), "<i2").reshape(-1, 6).tolist()
    if isinstance(msg, P.LogData):
        d["data"] = msg.data.hex(" ")
    return json.loads(json.dumps(d))  # tuples -> lists, as in the page


def test_every_packet_type_has_an_example():
    types = {_bytes(e["packet"])[0] & 0x0F for e in EXAMPLES}
    assert types == set(P.TYPE_NAMES)
    assert any("frame" in e for e in EXAMPLES)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "fields" in e], ids=lambda e: e["packet"][:8])
def test_packet_example_decodes_to_its_fields_and_back(example):
    pkt = _bytes(example["packet"])
    msg = decode_packet(pkt)
    assert _fields(msg) == json.loads(example["fields"])
    assert encode_packet(msg) == pkt


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "frame" in e], ids=lambda e: e["packet"][:8])
def test_frame_example(example):
    assert P.frame(_bytes(example["packet"])) == _bytes(example["frame"])
