"""The clip's packet stream, live or on disk: the wire format's host face (packets), the readers'
one boundary for what a clip or a log may hold (schema), the decoder every source feeds
(decode: gaps, duplicates, backfill, restarts), and the session log's records (sclog: the writer
and the readers)."""
