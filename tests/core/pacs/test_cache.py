import os
import time

from core.pacs.cache import ENTRY, PARTIAL, RetrieveCache

STUDY, SERIES = "1.2.3", "1.2.3.4"


def _download(cache, study=STUDY, series=SERIES, uids=("1", "2"), size=10):
    partial = cache.begin(study, series)
    for u in uids:
        (partial / f"{u}.dcm").write_bytes(b"x" * size)
    return partial


def test_a_committed_series_is_found_while_the_pacs_lists_the_same_instances(tmp_path):
    cache = RetrieveCache(tmp_path)
    final = cache.commit(_download(cache), STUDY, SERIES, ["1", "2"], "src")
    assert final == cache.series_dir(STUDY, SERIES) and (final / ENTRY).is_file()
    assert cache.lookup(STUDY, SERIES, ["2", "1"]) == final
    assert cache.lookup(STUDY, SERIES) == final
    assert cache.lookup(STUDY, SERIES, ["1", "2", "3"]) is None  # the series changed on the PACS
    e = cache.entry(STUDY, SERIES)
    assert (e.n_files, e.bytes) == (2, 20)


def test_a_partial_download_is_never_used_and_is_cleaned_once_stale(tmp_path):
    cache = RetrieveCache(tmp_path)
    partial = _download(cache)
    assert partial.name.startswith(PARTIAL)
    assert cache.lookup(STUDY, SERIES) is None and cache.entries() == []
    assert cache.clean() == []  # maybe still running
    old = time.time() - 7200
    os.utime(partial, (old, old))
    assert cache.clean() == [partial] and not partial.exists()


def test_a_changed_series_replaces_the_old_copy(tmp_path):
    cache = RetrieveCache(tmp_path)
    cache.commit(_download(cache), STUDY, SERIES, ["1", "2"])
    final = cache.commit(_download(cache, uids=("1", "2", "3")), STUDY, SERIES, ["1", "2", "3"])
    assert sorted(p.name for p in final.iterdir()) == ["1.dcm", "2.dcm", "3.dcm", ENTRY]
    assert [p.name for p in final.parent.iterdir()] == [final.name]


def test_the_least_recently_used_series_go_first_when_over_the_limit(tmp_path):
    cache = RetrieveCache(tmp_path, limit_gb=300 / 1024 ** 3)
    paths = []
    for i in range(3):
        paths.append(cache.commit(_download(cache, series=f"1.2.{i}", size=50), STUDY, f"1.2.{i}", ["1", "2"]))
        t = time.time() - 1000 + 100 * i
        os.utime(paths[-1] / ENTRY, (t, t))
    cache.lookup(STUDY, "1.2.0")  # used now: the newest
    cache.commit(_download(cache, series="1.2.9", size=50), STUDY, "1.2.9", ["1", "2"])
    left = sorted(e.series_uid for e in cache.entries())
    assert left == ["1.2.0", "1.2.2", "1.2.9"] and cache.total_bytes() <= 300


def test_odd_uids_get_safe_folder_names(tmp_path):
    cache = RetrieveCache(tmp_path)
    d = cache.series_dir("../../etc", "a/b")
    assert d.parent.parent == tmp_path and ".." not in d.parts
