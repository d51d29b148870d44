"""What clipcore's viper functions need, on the clip and under CPython.

On the clip the hot loops are MicroPython viper code (``@micropython.viper``): machine-word
integers and direct array access through ``ptr8``/``ptr16``/``ptr32``, ~10x faster than bytecode.
Under CPython the same source runs as plain Python: ``micropython.viper`` is the identity and the
``ptr`` casts return the buffer itself. Modules import it as::

    try:
        import micropython
    except ImportError:
        from clipcore.viper import micropython, ptr8, ptr16, ptr32

Two viper details the callers handle: ptr loads do not sign-extend (int16 values are read as
``((v + 0x8000) & 0xFFFF) - 0x8000``, which leaves CPython's signed values unchanged, and int32
values as ``(v << SX) >> SX``), and viper code is native to one architecture (mpy-cross -march).

The host also runs these functions compiled: ``strideclip.analysis.steps_compiled`` hands the
same function objects to numba, with ``ptr16``/``ptr32`` below compiled as they are (numpy
views in, the same views out). Nothing here knows of it; keep this file plain enough for
MicroPython, CPython and numba alike.
"""
import sys

try:
    import micropython  # noqa: F401  (the clip: the real decorator)

    # ptr32 loads zero-extend on a 64-bit port (the test runtime); on the clip's 32-bit words
    # they are already signed
    SX = 32 if sys.maxsize > 0x7FFFFFFF else 0
except ImportError:
    SX = 0

    class micropython:  # noqa: N801  (stands in for the module)
        @staticmethod
        def viper(f):
            return f

    def ptr8(buf):
        return buf

    ptr16 = ptr32 = ptr8
