"""``clipcore.steps`` compiled by numba: the clip's own detector at native speed on the host.

The clip runs ``detect_block`` and its helpers as MicroPython viper code (``@micropython.viper``:
machine words, ``ptr16``/``ptr32`` array access); under CPython the shim ``clipcore/viper.py``
makes them plain Python. Here those very function objects (their code, not a copy of their
source) are rebound to a namespace of their own and compiled with ``numba.njit``: ``ptr16`` and
``ptr32`` get numpy views of the detector's ``array.array`` buffers and hand them back, so the
state and the events stay in those buffers and either engine can take the next sample. clipcore
itself never sees numba, and the clip's files do not change.

Integers: every value the detector computes stays below 2^30 for any int16 input at any
sensitivity (the format table in clipcore/steps.py, checked against the MicroPython unix port
on random bytes), so the clip's 32-bit viper words, CPython's integers and numba's int64 locals
compute the same numbers and no store into the int32 buffers wraps. SX, the sign-extension
shift, is 0 here as under CPython.

The compiled code is cached (numba ``cache=True``) in $NUMBA_CACHE_DIR, else in the user's cache
folder (platformdirs), which works when the package itself is read-only. The folder is named by
a hash of the clipcore sources, their place and numba's version: numba checks only the compiled
function's own file, and ``filter_row`` bakes in constants from steps_table.py.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clipcore import steps as core
from clipcore import steps_table, viper

Block = Callable[..., int]  # detect_block's signature (clipcore/steps.py)

_lock = threading.Lock()  # one load at a time in a process
_block: Block | None = None  # the compiled detect_block, once loaded
_failure: str | None = None  # why there is none: numba missing, or failing on this source
_builder: subprocess.Popen | None = None  # a first compile running in a process of its own
_loader: threading.Thread | None = None  # a load from the cache running beside the caller
# That process: compile into the cache, exit 0 (1 if numba failed: the loader says why).
BUILD = "from strideclip.analysis import steps_compiled as s; raise SystemExit(s.load() is None)"


def cache_dir() -> Path:
    """Where the compiled detector is cached: a folder per install and version of the clipcore sources."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("strideclip", appauthor=False)) / "numba"
    digest = hashlib.sha256(importlib.metadata.version("numba").encode())
    digest.update(str(Path(core.__file__).resolve().parent).encode())  # one install's: cached() is exact
    for module in (core, steps_table, viper):
        digest.update(Path(module.__file__).read_bytes())
    return Path(root) / f"clipcore-{digest.hexdigest()[:16]}"


def cached() -> bool:
    """Whether a compiled detector is cached for these sources and this numba (loads in ~0.5 s)."""
    try:
        return any(cache_dir().glob("*/steps.detect_block-*.nbi"))
    except (OSError, importlib.metadata.PackageNotFoundError):
        return False


def buffers(det: core.StepDetector) -> tuple[np.ndarray, ...]:
    """The detector's buffers as numpy views (shared memory), in detect_block's argument order."""
    return tuple(np.frombuffer(b, dtype=b.typecode) for b in
                 (det.cfg, det.state, det.table, det.ring_n, det.ring_d, det.ring_y, det.ring_th, det.events))


def loaded() -> Block | None:
    """The compiled detect_block if this process has it already, else None."""
    return _block


def failure() -> str | None:
    """Why the compiled detector is unavailable (None: it is, or has not been tried)."""
    return _failure


def load() -> Block | None:
    """The compiled detect_block, loaded now: from the cache (~0.5 s), else compiled (~5 s). None
    when numba is missing (silently) or fails on this source (with a warning): the caller then
    runs the plain Python engine."""
    global _block, _failure
    with _lock:
        if _block is not None or _failure is not None:
            return _block
        try:
            import numba
        except ModuleNotFoundError:
            _failure = "numba is not installed"
            return None
        except Exception as e:  # noqa: BLE001  (an install that fails to import: the fallback is the point)
            _failure = f"numba failed to import: {e}"
        else:
            try:
                block = _compile(numba)
                det = core.StepDetector(104, 488, 1)  # one sample through it: compiles or loads the cache
                block(np.zeros(6, np.int16), 0, 1, *buffers(det), 1)
                _block = block
                return block
            except Exception as e:  # noqa: BLE001
                first_line = str(e).splitlines()[0] if str(e) else repr(e)
                _failure = f"numba could not compile clipcore.steps: {first_line}"
    warnings.warn(f"the compiled step detector is unavailable, the plain Python one runs: {_failure}",
                  RuntimeWarning, stacklevel=2)
    return None


def load_soon(*, wait: bool = False) -> Block | None:
    """The compiled detect_block if it is loaded, else None while it gets loaded beside the caller,
    who goes on with plain Python meanwhile: from the cache in a thread (~0.5 s, so a live session
    never stalls), or on a first run compiled by a process of its own (seconds, on another core,
    and nothing waits for it at exit or on Ctrl-C), then loaded from the cache it left.
    ``wait``: a build in the cache is loaded here and now instead (a log read flat out would
    rather wait than share the interpreter with a loading thread)."""
    global _builder, _loader
    if _block is not None or _failure is not None or _loader is not None:
        return _block
    if _builder is None and not cached() and sys.executable and importlib.util.find_spec("numba"):
        if _writable(cache_dir()):  # else a build elsewhere could not be handed over
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # these very sources
            try:
                _builder = subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
                return None
            except OSError:  # no process to be had: compile in the thread
                pass
    if _builder is not None and _builder.poll() is None:
        return None
    if wait:
        return load()
    # Not a daemon: a process does not exit, nor fork (below), while LLVM is loading code.
    _loader = threading.Thread(target=load, name="strideclip-detector-load")
    _loader.start()
    return None


def wait_for_load() -> Block | None:
    """Wait for what load_soon started, finishing it here; the compiled detect_block or None."""
    if _builder is not None:
        _builder.wait()
    if _loader is not None:
        _loader.join()
    return load()


def _join_loader() -> None:
    if _loader is not None and _loader is not threading.current_thread():
        _loader.join()


os.register_at_fork(before=_join_loader)  # a child must not inherit a half-done import


def _compile(numba: types.ModuleType) -> Block:
    """detect_block and every function it calls, rebound to one namespace and compiled."""
    namespace = dict(vars(core))
    path = cache_dir()
    cache = _writable(path)  # else nowhere to keep it: compiled in each process
    config = numba.core.config
    before = config.CACHE_DIR
    config.CACHE_DIR = str(path)  # read once per function, as njit(cache=True) picks its cache
    try:
        todo, seen = ["detect_block"], set()
        while todo:
            name = todo.pop()
            func = namespace.get(name)
            if name in seen or not isinstance(func, types.FunctionType):
                continue  # constants, builtins
            seen.add(name)
            if func.__globals__ is vars(core):  # its calls then resolve to the compiled helpers
                clone = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__,
                                           func.__closure__)
                clone.__qualname__ = func.__qualname__
                clone.__module__ = func.__module__
                todo += func.__code__.co_names
                func = clone
            namespace[name] = numba.njit(cache=cache)(func)  # ptr16/ptr32 (clipcore.viper) as they are
    finally:
        config.CACHE_DIR = before
    return namespace["detect_block"]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False
