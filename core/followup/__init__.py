"""Follow-up studies: one patient's baseline and follow-up CT compared lesion by lesion.

The follow-up is registered to the baseline (:mod:`.registration`), the lesions of both are
measured (:mod:`.diameters`) and matched (:mod:`.matching`), RECIST 1.1 and mRECIST targets and
response categories are derived (:mod:`.recist`), and :func:`.compare.compare_studies` puts it all
into one typed :class:`.compare.Comparison` that :mod:`.outputs` writes as JSON, CSV and PDF.
Only the command line (``liverseg compare``) and the GUI (*File > Compare with earlier study*,
:mod:`app.controllers.followup`) stand above this package.
Nothing here imports SimpleITK, TensorFlow or Qt on import.
"""
