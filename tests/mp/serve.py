"""Call server for parity tests: runs under MicroPython AND CPython, answers one JSON line per call.

Request:  {"f": "clipcore.protocol.decode", "a": [args...], "buf": 64 (optional)}
  - an argument {"hex": "..."} becomes bytes, {"ba": "..."} a bytearray, {"nt": "Hello", "v": [...]}
    a clipcore.protocol named tuple, {"arr": "h", "v": [...]} an array.array;
  - with "buf": N, a bytearray(N) is passed first and the reply also holds its first `result` bytes.
Reply: {"r": result} or {"e": "ExceptionClass", "m": "message"}; bytes come back as {"hex": ...}.

Usage: micropython tests/mp/serve.py <path to shared/>   (CPython imports handle() directly)
"""
import array
import json
import sys
from binascii import hexlify, unhexlify


def to_json(x):
    if isinstance(x, (bytes, bytearray, memoryview)):
        return {"hex": hexlify(bytes(x)).decode()}
    if isinstance(x, array.array):
        return [v for v in x]
    if isinstance(x, (tuple, list)):
        return [to_json(v) for v in x]
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    return x


def from_json(x):
    if isinstance(x, dict):
        if "hex" in x:
            return unhexlify(x["hex"])
        if "ba" in x:
            return bytearray(unhexlify(x["ba"]))
        if "nt" in x:
            from clipcore import protocol

            return getattr(protocol, x["nt"])(*[from_json(v) for v in x["v"]])
        if "arr" in x:
            return array.array(x["arr"], x["v"])
    if isinstance(x, list):
        return tuple(from_json(v) for v in x)
    return x


def resolve(name):
    parts = name.split(".")
    obj = __import__(parts[0])
    mod = parts[0]
    for p in parts[1:]:
        if not hasattr(obj, p):
            mod = mod + "." + p
            __import__(mod)
        obj = getattr(obj, p)
    return obj


def handle(req):
    try:
        fn = resolve(req["f"])
        args = [from_json(a) for a in req.get("a", [])]
        n = req.get("buf", 0)
        if n:
            buf = bytearray(n)
            result = fn(buf, *args)
            return {"r": [to_json(result), to_json(buf[:result])]}
        return {"r": to_json(fn(*args))}
    except Exception as e:  # the test compares exception classes and messages across runtimes
        return {"e": type(e).__name__, "m": str(e)}


def main():
    sys.path.insert(0, sys.argv[1])
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        print(json.dumps(handle(json.loads(line))))


if __name__ == "__main__":
    main()
