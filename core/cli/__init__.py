"""The command line without the GUI: the subcommands (:mod:`.commands`), the training subcommands
(:mod:`.train`), the terminal progress bar (:mod:`.progress_bar`) and ``liverseg selftest``
(:mod:`.selftest`).
"""
