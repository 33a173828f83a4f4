"""app.workers: results arrive as signals in the GUI thread; an ended job lets go of its data."""

import gc
import sys
import weakref

import numpy as np
import pytest

from app.workers import Job, JobRunner
from core.runtime.errors import LiverSegError


def _double(x, progress=None, cancel=None):
    progress and progress("step")
    return x * 2


def _fail(x, progress=None, cancel=None):
    raise LiverSegError(f"bad input {x.shape}")


def _connect(sig, job, got):
    """Connect a slot that closes over ``job`` (the kind MainWindow.start_job avoids: see Job.release)."""
    sig.connect(lambda *a: got.append((job.name, a)))


@pytest.mark.parametrize("fn, signal", [(_double, "finished"), (_fail, "failed")])
def test_an_ended_job_releases_its_arguments_and_slots(qtbot, fn, signal):
    """A slot closing over its job is a cycle through Qt's C++ connection list, which Python's
    collector cannot break: without Job.release, every study given to a job would stay alive."""
    runner = JobRunner()
    data = np.ones((4, 8, 8), np.int16)
    ref = weakref.ref(data)
    job = Job("double", fn, data)
    got = []
    _connect(getattr(job, signal), job, got)
    with qtbot.waitSignal(getattr(job, signal), timeout=10000):
        runner.start(job)
    assert got and got[0][0] == "double"
    if signal == "finished":
        assert got[0][1][0].sum() == 2 * data.size
    else:
        assert "bad input (4, 8, 8)" in got[0][1][0]
    del data, got
    job_ref = weakref.ref(job)
    del job
    gc.collect()
    assert ref() is None, "the job's argument is still alive after the job ended"
    assert job_ref() is None, "the job is still alive: a connected slot keeps it"
    assert not runner.busy


def _stages_then_batches(progress=None, cancel=None):
    from core.runtime.jobs import report
    for stage in range(2):
        report(progress, "recipe", stage, 2)
        for b in range(200):
            report(progress, "batch", b, 200)
    return "done"


def test_a_step_event_is_not_swallowed_by_the_batches_after_it(qtbot):
    """The GUI gets the newest event of each step per tick: a "recipe" event (which the fine-tune box
    follows to switch curves) followed at once by hundreds of batch events still arrives."""
    runner = JobRunner()
    job = Job("steps", _stages_then_batches)
    seen = []
    job.progress.connect(lambda ev: seen.append((ev.stage, ev.done)))
    with qtbot.waitSignal(job.finished, timeout=10000):
        runner.start(job)
    recipe = [d for s, d in seen if s == "recipe"]
    assert recipe[-1] == 1 and recipe == sorted(recipe)
    assert len([s for s in seen if s[0] == "batch"]) < 400  # still coalesced
    assert seen[-1] == ("batch", 199)  # the order of arrival is kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_job_thread_runs_nicer_than_the_gui_thread(qtbot):
    """The cascade's threads must not take the GUI thread's core (a 500-slice study: the event loop
    stalled 156-183 ms with equal priorities, 38-67 ms with the workers niced, on two busy cores)."""
    import os
    import threading

    from app.workers import WORKER_NICE

    def nice_of_this_thread(progress=None, cancel=None):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner = JobRunner()
    job = Job("nice", nice_of_this_thread)
    got = []
    job.finished.connect(got.append)
    with qtbot.waitSignal(job.finished, timeout=10000):
        runner.start(job)
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert got == [min(19, gui + WORKER_NICE)]
