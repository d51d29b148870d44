"""Other sensors' recordings as StrideClip sessions (#25, docs/import.md): a reader per format
gives a ``Recording``; ``to_log`` turns one into a session log every command reads."""
