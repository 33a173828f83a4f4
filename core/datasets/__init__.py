"""The dataset folder (:mod:`.dataset`: one ``.npz`` per case, ``manifest.json``), the anatomy label
maps (:mod:`.anatomy`) and the importers: 3D-IRCADb-01 (:mod:`.ircadb`), Decathlon, LiTS and NIfTI
pairs (:mod:`.nifti_import`), and a lab's corrected studies (:mod:`.lab_cases`). Above :mod:`core.io`.
"""
