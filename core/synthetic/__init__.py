"""Synthetic data: the CT phantom (:mod:`.phantom`), CT rendered from real anatomy
(:mod:`.synth_ct`; whole volumes, one appearance each, for scoring: :mod:`.volume_ct`),
synthetic lesions (:mod:`.lesion_synth`) and the built-in demo study (:mod:`.demo`).
Above :mod:`core.datasets`.
"""
