"""``liverseg pacs list|add|remove|echo|query|retrieve|send``, and the PACS parts of ``predict``
(``--send NAME``, ``--batch --pacs NAME``). Registered by :func:`core.cli.commands.add_subcommands`."""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path

from ..runtime.errors import LiverSegError, PacsError
from ..runtime.jobs import CancelToken
from .progress_bar import ProgressBar


def _query(args):
    from ..pacs.types import PacsQuery
    return PacsQuery(patient_id=args.patient_id or "", patient_name=args.patient_name or "",
                     date_from=args.date_from or "", date_to=args.date_to or "",
                     accession=getattr(args, "accession", "") or "", modality=args.modality)


def cmd_pacs_list(args, cancel: CancelToken) -> int:
    from ..pacs.connections import connections_path, load_connections
    conns = load_connections()
    for c in conns:
        print(f"{c.name}\t{'DIMSE' if c.protocol == 'dimse' else 'DICOMweb'}\t{c.address}"
              f"{'' if c.auth == 'none' else f'  ({c.auth} auth)'}")
    if not conns:
        print(f"no PACS connections saved ({connections_path()}); add one with `liverseg pacs add`")
    return 0


def cmd_pacs_add(args, cancel: CancelToken) -> int:
    from ..pacs.connections import PacsConnection, store_secret, upsert_connection
    if bool(args.url) == bool(args.host):
        raise LiverSegError("give --host (DIMSE) or --url (DICOMweb), not both")
    if args.url:
        auth = args.auth or ("basic" if args.user else "none")
        conn = PacsConnection(args.name, "dicomweb", url=args.url, auth=auth, username=args.user or "",
                              timeout=args.timeout)
    else:
        conn = PacsConnection(args.name, "dimse", host=args.host, port=args.port, called_ae=args.aet,
                              calling_ae=args.calling_aet, timeout=args.timeout)
    upsert_connection(conn)
    if conn.auth != "none":
        secret = sys.stdin.readline().rstrip("\n") if args.secret_stdin else getpass.getpass(
            f"{'password' if conn.auth == 'basic' else 'token'} for {conn.name}: ")
        if not store_secret(conn.name, secret):
            print("warning: no keyring on this system: the secret is not saved; set LIVERSEG_PACS_SECRET "
                  "for each run", file=sys.stderr)
    print(f"saved {conn.describe()}")
    return 0


def cmd_pacs_remove(args, cancel: CancelToken) -> int:
    from ..pacs.connections import remove_connection
    remove_connection(args.name)
    print(f"removed {args.name}")
    return 0


def cmd_pacs_echo(args, cancel: CancelToken) -> int:
    from ..pacs.connections import find_connection
    from ..pacs.operations import test_connection
    print(test_connection(find_connection(args.name)))
    return 0


def cmd_pacs_query(args, cancel: CancelToken) -> int:
    from ..pacs.connections import find_connection
    from ..pacs.operations import query_series, query_studies
    conn = find_connection(args.name)
    studies = query_studies(conn, _query(args))
    for s in studies:
        print(f"{s.date or '-':8}  {s.patient_id or '-':16}  {s.patient_name or '-':24}  "
              f"{s.description or '-':24}  {s.n_series if s.n_series is not None else '?'} series  {s.study_uid}")
        if args.series:
            for se in query_series(conn, s.study_uid):
                print(f"    #{se.number or '-':>4} {se.modality or '-':4} {se.description or '-':28} "
                      f"{se.n_instances if se.n_instances is not None else '?':>5} images  {se.series_uid}")
    print(f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'}")
    return 0


def cmd_pacs_retrieve(args, cancel: CancelToken) -> int:
    from ..pacs.connections import find_connection
    from ..pacs.operations import query_series, retrieve_series
    conn = find_connection(args.name)
    series = [args.series] if args.series else [s.series_uid for s in query_series(conn, args.study, args.modality)]
    if not series:
        raise PacsError(f"PACS {conn.describe()}: study {args.study} has no {args.modality} series")
    for uid in series:
        r = retrieve_series(conn, args.study, uid, progress=ProgressBar(), cancel=cancel)
        print(f"{r.path}\t{r.n_files} files\t{'cache' if r.from_cache else f'{r.seconds:.1f} s'}")
    return 0


def cmd_pacs_send(args, cancel: CancelToken) -> int:
    from ..pacs.connections import find_connection
    from ..pacs.operations import send_files
    result = send_files(find_connection(args.name), [Path(f) for f in args.files], ProgressBar(), cancel)
    print(f"{args.name}: {result.describe()}")
    return 0 if result.ok else 1


def send_prediction(session, name: str, seg_path, cancel: CancelToken) -> None:
    """``predict --send``: the DICOM SEG (written with --seg, or to a temporary file) to the PACS."""
    from ..pacs.connections import find_connection
    from ..pacs.operations import send_files
    conn = find_connection(name)
    with tempfile.TemporaryDirectory(prefix="liverseg-send-") as tmp:
        path = Path(seg_path) if seg_path else session.export("seg", Path(tmp) / "seg.dcm", force=True)
        result = send_files(conn, [Path(path)], cancel=cancel)
    print(f"sent the DICOM SEG to {conn.describe()}: {result.describe()}")
    if not result.ok:
        raise PacsError(f"PACS {conn.describe()} did not accept the DICOM SEG ({result.describe()})")


def predict_batch_pacs(args, liver, tumour, shard, cancel: CancelToken):
    """``predict --batch --pacs NAME``: every CT series of the query, this shard's share."""
    from ..pacs.batch import pacs_sources, query_ct_series
    from ..pacs.connections import find_connection
    from ..study.batch import run_batch, take_shard
    conn = find_connection(args.pacs)
    pairs = take_shard(query_ct_series(conn, _query(args)), shard)
    if not pairs:
        raise PacsError(f"PACS {conn.describe()}: the query found no {args.modality} series")
    return run_batch(os.devnull, args.out, liver, tumour, force=args.force, shard=shard, engine=args.engine,
                     device=args.device, progress=ProgressBar(), cancel=cancel,
                     sources=pacs_sources(conn, pairs, cancel=cancel))


def add_query_flags(p, with_accession: bool = True) -> None:
    p.add_argument("--patient-id", help="patient ID (DICOM wildcards * and ? allowed)")
    p.add_argument("--patient-name", help="patient name, e.g. 'DOE*'")
    p.add_argument("--date-from", metavar="YYYYMMDD", help="studies on or after this date")
    p.add_argument("--date-to", metavar="YYYYMMDD", help="studies on or before this date")
    if with_accession:
        p.add_argument("--accession", help="accession number")
    p.add_argument("--modality", default="CT", help="modality in the study (default CT; '' for any)")


def _pacs_only(func):
    """Every ``pacs`` action refuses in one line where this edition has no PACS support."""
    def run(args, cancel):
        from ..runtime.edition import require_pacs
        require_pacs()
        return func(args, cancel)
    return run


def add_pacs_subcommands(sub) -> None:
    pacs = sub.add_parser("pacs", help="PACS connections: query, retrieve and send (DIMSE or DICOMweb)")
    ps = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    p = ps.add_parser("list", help="the saved connections")
    p.set_defaults(func=_pacs_only(cmd_pacs_list))
    p = ps.add_parser("add", help="save a connection (replaces one of the same name); secrets go to the keyring")
    p.add_argument("name")
    p.add_argument("--host", help="DIMSE: the PACS's host")
    p.add_argument("--port", type=int, default=104, help="DIMSE port (default 104)")
    p.add_argument("--aet", default="ANY-SCP", help="DIMSE: the PACS's (called) AE title")
    p.add_argument("--calling-aet", default="LIVERSEG", help="DIMSE: our AE title (default LIVERSEG)")
    p.add_argument("--url", help="DICOMweb root, e.g. http://pacs:8042/dicom-web")
    p.add_argument("--auth", choices=("none", "basic", "token"), help="DICOMweb authentication (basic with --user)")
    p.add_argument("--user", help="DICOMweb basic-auth user name")
    p.add_argument("--secret-stdin", action="store_true", help="read the password / token from stdin")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    p.set_defaults(func=_pacs_only(cmd_pacs_add))
    p = ps.add_parser("remove", help="forget a connection and its secret")
    p.add_argument("name")
    p.set_defaults(func=_pacs_only(cmd_pacs_remove))
    p = ps.add_parser("echo", help="test a connection (C-ECHO or a QIDO query)")
    p.add_argument("name")
    p.set_defaults(func=_pacs_only(cmd_pacs_echo))
    p = ps.add_parser("query", help="find studies (and with --series their series)")
    p.add_argument("name")
    add_query_flags(p)
    p.add_argument("--series", action="store_true", help="list each study's series with image counts")
    p.set_defaults(func=_pacs_only(cmd_pacs_query))
    p = ps.add_parser("retrieve", help="download a series (or every CT series of a study) into the cache "
                                       "and print its folder")
    p.add_argument("name")
    p.add_argument("--study", required=True, help="Study Instance UID")
    p.add_argument("--series", help="Series Instance UID (default: every --modality series of the study)")
    p.add_argument("--modality", default="CT")
    p.set_defaults(func=_pacs_only(cmd_pacs_retrieve))
    p = ps.add_parser("send", help="store DICOM files (a DICOM SEG, say) on the PACS")
    p.add_argument("name")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_pacs_only(cmd_pacs_send))
