"""Where a clip's packets come from. Every transport yields whole packets (bytes) and sends
packets to the clip; all of them feed the same decoder (strideclip.decode, via the pipeline).
USB serial is here (serial.py); BLE with bleak is issue #8."""
from strideclip.errors import StrideClipError


class TransportError(StrideClipError):
    """A link could not be opened or was lost; ``port`` names it."""

    def __init__(self, message: str, *, port: str = ""):
        super().__init__(message)
        self.port = port
