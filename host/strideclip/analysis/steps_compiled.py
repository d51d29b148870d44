"""``clipcore.steps`` compiled by numba: the clip's own detector at native speed on the host.

The clip runs ``detect_block`` and its helpers as MicroPython viper code (``@micropython.viper``:
machine words, ``ptr16``/``ptr32`` array access); under CPython the shim ``clipcore/viper.py``
makes them plain Python. Here those very function objects (their code, not a copy of their
source) are rebound to a namespace of their own and compiled ahead of time by numba's ``pycc``
into an extension module: ``ptr16`` and ``ptr32`` get numpy views of the detector's
``array.array`` buffers and hand them back, so the state and the events stay in those buffers
and either engine can take the next sample. clipcore itself never sees numba, and the clip's
files do not change.

Ahead of time, not just in time: the built module imports in milliseconds and needs no numba
at run time, where numba's own cache needs ``import numba`` and a cache load (0.8-0.9 s, more
than the detector takes for an hour of data).

Integers: every value the detector computes stays below 2^30 for any int16 input at any
sensitivity (the format table in clipcore/steps.py, checked against the MicroPython unix port
on random bytes), so the clip's 32-bit viper words, CPython's integers and numba's int64 locals
compute the same numbers and no store into the int32 buffers wraps. SX, the sign-extension
shift, is 0 here as under CPython.

The build is kept in $NUMBA_CACHE_DIR, else in the user's cache folder (platformdirs), which
works when the package itself is read-only, in a folder named by a hash of the clipcore sources,
their place, and the Python, numpy and numba it was built with.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipcore import steps as core
from clipcore import steps_table, viper

if TYPE_CHECKING:  # (imported where a build starts: every analysing command imports this module)
    import subprocess

Block = Callable[..., int]  # detect_block's signature (clipcore/steps.py)
MODULE = "clipcore_steps"  # the built extension module's name
# detect_block(samples, start, n, cfg, st, table, ring_n, ring_d, ring_y, ring_th, events, max_events)
SIGNATURE = "i8(i2[::1], i8, i8, i4[::1], i4[::1], u2[::1], i4[::1], i4[::1], i4[::1], i4[::1], i4[::1], i8)"

_lock = threading.Lock()  # one load at a time in a process
_block: Block | None = None  # the compiled detect_block, once loaded
_failure: str | None = None  # why there is none: numba missing, or failing on this source
_builder: subprocess.Popen | None = None  # a first build running in a process of its own
# That process: build into the cache, exit 0 (1 if numba failed: the loader says why).
BUILD = "from strideclip.analysis import steps_compiled as s; raise SystemExit(s.load() is None)"


def cache_dir() -> Path:
    """Where the compiled detector is kept: a folder per install and version of the clipcore sources."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("strideclip", appauthor=False)) / "numba"
    return Path(root) / f"clipcore-{_digest()}"


@functools.cache
def _digest() -> str:
    digest = hashlib.sha256(" ".join((np.__version__, sys.version)).encode())
    digest.update(_numba_release())
    digest.update(str(Path(core.__file__).resolve().parent).encode())  # one install's: cached() is exact
    for module in (core, steps_table, viper):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _numba_release() -> bytes:
    """Which numba would build: its version file (release and revision), read without importing
    numba or importlib.metadata (that import cost every command that analyses ~15 ms). Raises
    ModuleNotFoundError when numba is not installed."""
    spec = importlib.util.find_spec("numba")
    if spec is None or not spec.origin:
        raise ModuleNotFoundError("No module named 'numba'", name="numba")
    folder = Path(spec.origin).parent
    version = folder / "_version.py"
    return (version if version.is_file() else folder / "__init__.py").read_bytes()


def _built(folder: Path) -> Path:
    return folder / (MODULE + importlib.machinery.EXTENSION_SUFFIXES[0])


def cached() -> bool:
    """Whether a compiled detector is built for these sources, this Python, numpy and numba."""
    try:
        return _built(cache_dir()).is_file()
    except (OSError, ModuleNotFoundError):
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
    """The compiled detect_block, loaded now: the build (milliseconds), else built first (~10 s).
    None when numba is missing (silently) or fails on this source (with a warning): the caller
    then runs the plain Python engine."""
    global _block, _failure
    with _lock:
        if _block is not None or _failure is not None:
            return _block
        try:
            _block = _load()
            return _block
        except ModuleNotFoundError as e:
            if "numba" in str(e):
                _failure = "numba is not installed"
                return None
            _failure = f"numba could not compile clipcore.steps: {e!r}"
        except Exception as e:  # noqa: BLE001  (a build that fails: the fallback is the point)
            first_line = str(e).splitlines()[0] if str(e) else repr(e)
            _failure = f"numba could not compile clipcore.steps: {first_line}"
    warnings.warn(f"the compiled step detector is unavailable, the plain Python one runs: {_failure}",
                  RuntimeWarning, stacklevel=2)
    return None


def load_soon() -> Block | None:
    """The compiled detect_block if it is built (loaded now: milliseconds), else None while a
    process of its own builds it (seconds, on another core; nothing waits for it at exit or on
    Ctrl-C), and the build once that process is done. With nowhere to keep a build, None: the
    caller goes on in plain Python rather than build one for this process alone."""
    global _builder, _failure
    if _block is not None or _failure is not None:
        return _block
    if _builder is None:
        if cached():
            return load()
        try:
            if not importlib.util.find_spec("numba") or not _writable(cache_dir()):
                _failure = "nowhere to keep a build, or no numba to make one"
                return None
            import subprocess  # (only a build needs it: every analysing command imports this module)

            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # these very sources
            _builder = subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ModuleNotFoundError) as e:
            _failure = f"could not start a build: {e}"
        return None
    return None if _builder.poll() is None else load()


def wait_for_load() -> Block | None:
    """Wait for a build load_soon started, then load it; the compiled detect_block or None."""
    if _builder is not None:
        _builder.wait()
    return load()


def _load() -> Block:
    """Import the build (making it first if there is none), and run one sample through it."""
    folder = cache_dir()
    block = _import(_built(folder)) if _built(folder).is_file() else _build_here(folder)
    det = core.StepDetector(104, 488, 1)
    block(np.zeros(6, np.int16), 0, 1, *buffers(det), 1)
    return block


def _build_here(folder: Path) -> Block:
    """Build into the cache folder and import it (built for this process alone where the folder
    cannot be written)."""
    import tempfile  # (here and in _writable: only a build needs it, every analysing command imports this module)

    if _writable(folder):
        with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
            os.replace(_build(Path(tmp)), _built(folder))  # whole, or not at all: other processes read it
        return _import(_built(folder))
    with tempfile.TemporaryDirectory(prefix="strideclip-build-") as tmp:
        return _import(_build(Path(tmp)))


def _import(path: Path) -> Block:
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.detect_block


def _build(folder: Path) -> Path:
    """detect_block and every function it calls, rebound to one namespace, built into folder."""
    import numba

    with warnings.catch_warnings():  # pycc is "pending deprecation" with no replacement yet: if it
        warnings.simplefilter("ignore")  # goes, the build fails and plain Python runs (with a warning)
        from numba.pycc import CC

    namespace = dict(vars(core))
    todo, seen = ["detect_block"], set()
    while todo:
        name = todo.pop()
        func = namespace.get(name)
        if name in seen or not isinstance(func, types.FunctionType):
            continue  # constants, builtins
        seen.add(name)
        if func.__globals__ is vars(core):  # its calls then resolve to the compiled helpers
            clone = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
            clone.__qualname__ = func.__qualname__
            clone.__module__ = func.__module__
            todo += func.__code__.co_names
            func = clone
        namespace[name] = func if name == "detect_block" else numba.njit(func)  # ptr16/ptr32 as they are
    cc = CC(MODULE)
    cc.output_dir = str(folder)
    cc.verbose = False
    cc.export("detect_block", SIGNATURE)(namespace["detect_block"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # distutils, which pycc builds with
        cc.compile()
    built = list(folder.glob(MODULE + ".*"))
    if len(built) != 1:
        raise RuntimeError(f"the build left {[p.name for p in built]} in {folder}")
    return built[0]


def _writable(path: Path) -> bool:
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False
