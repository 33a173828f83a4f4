"""The label codes of every segmentation we read, compute and write: one definition.

A label volume is uint8 [Z, Y, X]: 0 background, 1 liver, 2 tumour (a tumour voxel is also liver:
"the liver" is ``label >= LIVER``). Datasets, the cascade, editing, metrics, exports (NIfTI values,
DICOM SEG segment numbers) and the viewer's colours all use these names.
"""

from __future__ import annotations

BACKGROUND, LIVER, TUMOUR = 0, 1, 2
NAMES = {BACKGROUND: "background", LIVER: "liver", TUMOUR: "tumour"}
