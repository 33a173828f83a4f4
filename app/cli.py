"""The ``liverseg`` command: the GUI by default, plus the ``core`` subcommands."""

from __future__ import annotations

import argparse
import os
import sys

from core import __version__
from core.cli.commands import add_subcommands, run


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="liverseg", description="LiverSeg Studio: liver and liver tumour "
                                 "segmentation in abdominal CT.")
    ap.add_argument("--version", action="version", version=f"LiverSeg Studio {__version__}")
    ap.add_argument("--verbose", action="store_true", help="show the ML backends' start-up messages "
                    "(anywhere on the line; also LIVERSEG_DEBUG=1)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("gui", help="open the main window (the default)")
    p.add_argument("path", nargs="?", help="DICOM folder to open")
    p.add_argument("--demo", action="store_true", help="open the built-in demo study")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window after loading")
    p.add_argument("--quit", action="store_true", help="exit after loading (with --screenshot)")
    p.add_argument("--timings", metavar="JSON", help="write start-up timings (window ready, first slice "
                   "on screen; seconds since LIVERSEG_LAUNCH_T or since the process began)")
    p.set_defaults(func=lambda a, c: _gui(a))
    add_subcommands(sub)
    return ap


def _gui(args) -> int:
    from app.main import run_gui
    return run_gui(args)


def take_verbose(argv: list[str]) -> list[str]:
    """Drop ``--verbose`` wherever it stands and turn the backends' messages on (LIVERSEG_DEBUG)."""
    if "--verbose" in argv:
        os.environ["LIVERSEG_DEBUG"] = "1"
    return [a for a in argv if a != "--verbose"]


def main(argv=None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["gl-probe"]:  # the 3D view's OpenGL test, not in --help
        from app.widgets.gl_probe import probe_main
        return probe_main()
    from core.runtime.settings import apply_backend, load_settings
    apply_backend(load_settings())  # before anything imports Keras; KERAS_BACKEND wins when set
    argv = take_verbose(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv or ["gui"])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
