"""What the samples say: the clip's step detector on the host (steps), the body frame learnt from
the runner's motion (bodyframe), the per-step metrics (metrics) and the fatigue state over them
(fatigue)."""
