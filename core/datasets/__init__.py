"""The dataset folder (:mod:`.dataset`: one ``.npz`` per case, ``manifest.json``), the anatomy label
maps (:mod:`.anatomy`) and the importers: 3D-IRCADb-01 (:mod:`.ircadb`), Decathlon, LiTS and NIfTI
pairs (:mod:`.nifti_import`). Above :mod:`core.io`.
"""
