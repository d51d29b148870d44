"""StrideClip host package: one subpackage per stage of the data path (docs/architecture.md)."""

__version__ = "0.1.0"
