"""Coaching: the host's glue to the clip's cue policy (policy), cue settings from TOML
(cueconfig), whether a cue helped (cue_outcomes) and the cadence plan over the weeks
(cadence_plan)."""
