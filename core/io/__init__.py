"""Reading and writing files: DICOM series (:mod:`.dicom`), volume files (NIfTI, NRRD, MetaImage:
:mod:`.volume_file`, :mod:`.volume_formats`), label files onto an open study (:mod:`.label_file`),
the writers other tools read (:mod:`.export`) and untrusted zip archives (:mod:`.archive`).
Imports only :mod:`core.runtime`.
"""
