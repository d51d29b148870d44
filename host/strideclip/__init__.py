"""StrideClip host package: transports, decoding, step detection, metrics, cues, views."""

__version__ = "0.1.0"
