"""The closed sets of names the code compares as strings, each defined once as a ``Literal`` type.

Reports, settings files and the command line carry these names as plain strings, so they stay
strings (a ``Literal`` is a ``str`` at run time): the types let a checker see a misspelt name, and
each tuple beside its type is the one list that validation, menus and argument parsers use.
"""

from __future__ import annotations

from typing import Literal, get_args

ReviewState = Literal["unseen", "accepted", "rejected"]
"""A lesion's review state (:mod:`core.study.review`)."""
REVIEW_STATES: tuple[ReviewState, ...] = get_args(ReviewState)
