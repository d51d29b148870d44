"""One clip's session through the host: the pipeline every source feeds (pipeline: decoder ->
steps -> metrics -> fatigue -> cues), recording as packets arrive (recorder: the session log
first), live clips over any link (live), and a log read back and analysed (replay)."""
