"""How well each stage does, against references: the public data sets and their ground truth
(datasets), matching events (scoring), the step detector (evaluate; steps_reference, its float
reference), the per-step metrics (metrics_eval), and cues and fatigue on simulated runs
(cues_eval)."""
