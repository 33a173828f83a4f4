"""Array transforms shared by training and inference: the train/inference contract
(:mod:`.preprocess`), geometric augmentation (:mod:`.augment`), mask geometry (:mod:`.masks`) and the
cascade's post-processing steps (:mod:`.postprocess`). Imports only :mod:`core.runtime`; never
training or inference.
"""
