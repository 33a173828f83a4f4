"""Measuring: the metrics in numpy (:mod:`.metrics`) and the per-case evaluation of the cascade
(:mod:`.evaluate`).
"""
