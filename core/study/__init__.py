"""One open study and what is done to it, for the CLI and the GUI alike: the session
(:mod:`.session`), the study itself (:mod:`.study`), hand edits with undo (:mod:`.editing`), many studies
in one run (:mod:`.batch`) and what the viewer shows (:mod:`.viewer_state`). No Qt.
"""
