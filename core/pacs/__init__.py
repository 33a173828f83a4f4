"""Studies from a PACS and results back to it: saved connections (:mod:`.connections`), DIMSE
(:mod:`.dimse`, pynetdicom) and DICOMweb (:mod:`.dicomweb`, dicomweb-client) clients behind one
interface (:mod:`.client`), a retrieve cache (:mod:`.cache`) and the jobs built on them
(:mod:`.jobs`). No DICOM networking is written here by hand."""
