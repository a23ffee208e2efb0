"""The compiled k-means (core/methods/_kmeans_lloyd.py) against scikit-learn's KMeans:
the same starting centers, labels (rows exactly as far from two centers may differ: they
are counted), inertia and iterations, on grey, RGB, Lab, 16-bit values and pixel rows
with spatial features, weighted by pixel counts or not."""

from __future__ import annotations

import itertools
import os
import threading
import warnings

import numpy as np
import pytest
import threadpoolctl
from skimage import data, transform
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils.extmath import row_norms

from conftest import forked_child_result
from napari_pixel_clusters.core.features import build_features
from napari_pixel_clusters.core.image import read_image
from napari_pixel_clusters.core.methods import _kmeans_lloyd


def _rows(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Feature rows and their weights (None: pixel rows) of a small test image."""
    if name == "grey":
        fs = build_features(read_image(data.coins()))
    elif name == "grey16":
        camera = data.camera()[::2, ::2] * 257.0  # enlarged: thousands of 16-bit levels
        image = transform.resize(camera, (300, 300), order=1, preserve_range=True)
        fs = build_features(read_image(image.astype(np.uint16)))
    elif name in ("rgb", "lab"):
        fs = build_features(read_image(data.astronaut()[::3, ::3]), color_space=name)
    elif name == "cat-standardized":
        fs = build_features(read_image(data.chelsea()[::3, ::3]), standardize=True)
    elif name == "hed":
        fs = build_features(read_image(data.immunohistochemistry()[::4, ::4]), color_space="hed")
    else:  # pixel rows: color and position, no compression
        fs = build_features(read_image(data.astronaut()[::8, ::8]), spatial_weight=1.0)
    return fs.X, fs.weights


KINDS = ["grey", "grey16", "rgb", "lab", "cat-standardized", "hed", "spatial"]


def reference(X, k, weights, **options) -> KMeans:
    with warnings.catch_warnings():  # fewer distinct clusters than k, on purpose
        warnings.simplefilter("ignore")
        return KMeans(k, **options).fit(X, sample_weight=weights)


def count_ties(X, labels, reference_model) -> int:
    """Rows labelled differently from scikit-learn; fails unless each one is (to rounding)
    as near the reference's center of our label as to the reference's own label."""
    differ = np.flatnonzero(labels != reference_model.labels_)
    centers = reference_model.cluster_centers_
    scale = np.max(np.sum(X**2, axis=1)) + np.max(np.sum(centers**2, axis=1))
    for row in differ:
        ours, theirs = (
            np.sum((X[row] - centers[j]) ** 2) for j in (labels[row], reference_model.labels_[row])
        )
        assert abs(ours - theirs) <= 1e-12 * scale, f"row {row}: not a tie ({ours} vs {theirs})"
    return len(differ)


def assert_same_fit(fit, model, X) -> int:
    ties = count_ties(X, fit.labels, model)
    assert fit.inertia == pytest.approx(model.inertia_, rel=1e-9)
    assert fit.n_iter == model.n_iter_
    np.testing.assert_allclose(fit.centers, model.cluster_centers_, rtol=1e-9, atol=1e-12)
    return ties


@pytest.mark.parametrize("kind", KINDS)
def test_from_the_same_centers_the_same_labels_inertia_and_iterations(kind):
    X, weights = _rows(kind)
    start = X[np.random.default_rng(0).choice(len(X), 6, replace=False)] + 1e-3
    fit = _kmeans_lloyd.fit(X, 6, weights, init=start)
    model = reference(X, 6, weights, init=start, n_init=1)
    assert assert_same_fit(fit, model, X) == 0  # starts off the data: no exact ties


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 7])
def test_kmeans_plusplus_from_the_same_seed_gives_sklearns_result(kind, seed):
    X, weights = _rows(kind)
    fit = _kmeans_lloyd.fit(X, 5, weights, n_init=3, random_state=seed)
    model = reference(X, 5, weights, n_init=3, random_state=seed)
    ties = assert_same_fit(fit, model, X)
    assert ties <= 0.001 * len(X)  # k-means++ starts on the data: rows may tie exactly


@pytest.mark.parametrize("kind", ["grey", "rgb", "lab", "spatial"])
def test_kmeans_plusplus_draws_sklearns_centers(kind):
    X, weights = _rows(kind)
    X = X - X.mean(axis=0)
    weights = np.ones(len(X)) if weights is None else weights
    norms = row_norms(X, squared=True)
    for seed, k in itertools.product(range(10), (5, 8)):  # 3 and 4 candidates a center
        ours = _kmeans_lloyd.kmeans_plusplus(X, k, norms, weights, np.random.RandomState(seed))
        theirs, _ = kmeans_plusplus(
            X, k, sample_weight=weights, x_squared_norms=norms, random_state=seed
        )
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("kind", ["grey16", "lab"])
def test_random_init_and_tolerance_zero_as_sklearn(kind):
    X, weights = _rows(kind)
    fit = _kmeans_lloyd.fit(X, 4, weights, init="random", n_init=2, tol=0.0, random_state=3)
    model = reference(X, 4, weights, init="random", n_init=2, tol=0.0, random_state=3)
    assert_same_fit(fit, model, X)


@pytest.mark.parametrize("kind", ["grey", "rgb", "spatial"])
def test_a_center_far_from_all_data_is_relocated_as_sklearn_does(kind):
    X, weights = _rows(kind)
    start = X[np.random.default_rng(1).choice(len(X), 4, replace=False)] + 1e-3
    start[1] = X.max(axis=0) + 100.0  # nearest to no row: empty after the first E-step
    start[3] = X.max(axis=0) + 200.0
    fit = _kmeans_lloyd.fit(X, 4, weights, init=start)
    model = reference(X, 4, weights, init=start, n_init=1)
    assert_same_fit(fit, model, X)
    assert len(np.unique(fit.labels)) == 4


def test_as_many_clusters_as_distinct_rows_and_one_distinct_row():
    X, weights = _rows("grey")
    k = len(X)  # every distinct grey value its own cluster
    fit = _kmeans_lloyd.fit(X, k, weights, random_state=0)
    model = reference(X, k, weights, random_state=0)
    assert_same_fit(fit, model, X)
    assert len(np.unique(fit.labels)) == k
    one = np.full((50, 3), 0.25)  # pixel rows of one color: k=1, and k=3 (duplicates)
    for k in (1, 3):
        fit = _kmeans_lloyd.fit(one, k, random_state=0)
        model = reference(one, k, None, random_state=0)
        np.testing.assert_array_equal(fit.labels, model.labels_)
        assert fit.inertia == model.inertia_ == 0.0
        assert fit.n_iter == model.n_iter_


def test_starts_in_threads_give_the_same_result_as_one_by_one():
    X, weights = _rows("lab")
    parallel = _kmeans_lloyd.fit(X, 6, weights, n_init=4, random_state=2, n_threads=2)
    serial = _kmeans_lloyd.fit(X, 6, weights, n_init=4, random_state=2, n_threads=1)
    np.testing.assert_array_equal(parallel.labels, serial.labels)
    assert parallel.inertia == serial.inertia and parallel.n_iter == serial.n_iter


def test_rows_shared_out_between_threads_give_the_same_result():
    image = data.astronaut()[::2, ::2]  # 65,536 pixel rows: two blocks of rows
    X = build_features(read_image(image), spatial_weight=0.5).X
    start = X[:: len(X) // 7][:7] + 1e-3
    fits = [_kmeans_lloyd.fit(X, 7, init=start, n_threads=n) for n in (1, 2, 3)]
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.labels, fits[0].labels)
        np.testing.assert_array_equal(fit.centers, fits[0].centers)
        assert fit.inertia == fits[0].inertia and fit.n_iter == fits[0].n_iter
    assert_same_fit(fits[0], reference(X, 7, None, init=start, n_init=1), X)


def test_max_iter_stops_and_relabels_as_sklearn():
    X, weights = _rows("rgb")
    start = X[:5] + 1e-3
    for max_iter in (1, 2, 5):
        fit = _kmeans_lloyd.fit(X, 5, weights, init=start, max_iter=max_iter)
        model = reference(X, 5, weights, init=start, n_init=1, max_iter=max_iter)
        assert_same_fit(fit, model, X)
        assert fit.n_iter == max_iter


def test_warm_up_compiles_and_input_is_left_alone():
    _kmeans_lloyd.warm_up()
    X, weights = _rows("grey")
    before, before_weights = X.copy(), weights.copy()
    _kmeans_lloyd.fit(X, 3, weights, random_state=0)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(weights, before_weights)


def test_blas_threads_are_limited_during_a_fit_and_restored_after():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    with _kmeans_lloyd._one_blas_thread():
        with _kmeans_lloyd._one_blas_thread():  # fits in two threads at once
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}
    assert blas_threads() == before
    X, weights = _rows("grey")
    _kmeans_lloyd.fit(X, 3, weights, n_init=2, random_state=0)
    assert blas_threads() == before


def test_compiled_center_norms_are_row_norms_bit_for_bit():
    rng = np.random.default_rng(5)
    for n_features in range(1, 21):
        centers = rng.standard_normal((64, n_features)) * 10.0 ** rng.integers(-5, 5, (64, 1))
        np.testing.assert_array_equal(
            _kmeans_lloyd.squared_norms(centers), row_norms(centers, squared=True)
        )
        assert _kmeans_lloyd.compiled_norms_match(n_features)


@pytest.mark.parametrize("layout", ["C float64", "F float64", "float32", "uint8", "strided"])
@pytest.mark.parametrize("n_features", [1, 3, 5, 9])
def test_centered_rows_are_numpys_and_row_norms_bit_for_bit(layout, n_features):
    """fit's one pass (X - mean, row_norms, X.T) equals numpy's and scikit-learn's steps,
    given the mean (as kmeans.fit_rows passes it) or not."""
    rng = np.random.default_rng(n_features)
    values = rng.standard_normal((3000, 2 * n_features)) * 10.0 ** rng.integers(-3, 4)
    X = {
        "C float64": np.ascontiguousarray(values[:, :n_features]),
        "F float64": np.asfortranarray(values[:, :n_features]),
        "float32": values[:, :n_features].astype(np.float32),
        "uint8": (np.abs(values[:, :n_features]) * 40 % 256).astype(np.uint8),
        "strided": values[:, ::2],
    }[layout]
    copy = X.copy()
    expected = np.array(X, dtype=np.float64, order="C")
    mean = expected.mean(axis=0)
    expected -= mean
    for given in (None, np.asarray(X, dtype=np.float64).mean(axis=0)):
        centered, got_mean, norms, columns = _kmeans_lloyd.centered_rows(X, given, True)
        np.testing.assert_array_equal(got_mean, mean)
        np.testing.assert_array_equal(centered, expected)
        np.testing.assert_array_equal(norms, row_norms(expected, squared=True))
        np.testing.assert_array_equal(columns, expected.T)
        assert columns.flags.c_contiguous and centered.flags.c_contiguous
    assert _kmeans_lloyd.centered_rows(X, None, False)[3] is None
    np.testing.assert_array_equal(X, copy)  # the input is left alone


def test_compiled_sum_of_squared_shifts_is_numpys():
    rng = np.random.default_rng(6)
    for n in range(1, 300):
        values = rng.random(n) ** 4 * 10.0 ** rng.integers(-6, 3, n)
        assert _kmeans_lloyd.numpy_sum(values) == np.sum(values)


def _bounds_moved(labels, upper, lower, shift, lower_shift, half_gap, slack):
    """What the bounds pass computes, in numpy: the moved bounds and the open rows."""
    far_bound, near_bound = upper + shift[labels], lower - lower_shift[labels]
    near = np.maximum(half_gap[labels], near_bound) * (1.0 - _kmeans_lloyd.MARGIN)
    far = far_bound * (1.0 + _kmeans_lloyd.MARGIN)
    return far_bound, near_bound, (near <= far) | ((near - far) * (near + far) <= slack)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 9, 16])
def test_bounds_pass_opens_the_rows_numpy_would(k):
    """The bounds pass (a tree of selects up to FEW_CENTERS centers, table lookups above)
    moves every bound and opens every row as the same formula in numpy does."""
    rng = np.random.default_rng(k)
    n = 5000
    labels = rng.integers(0, k, n).astype(np.int32)
    upper = rng.random(n) * 2.0
    lower = upper + rng.standard_normal(n) * 0.3
    shift, lower_shift = rng.random(k) * 0.05, rng.random(k) * 0.05
    half_gap = rng.random(k) * 2.0 if k > 1 else np.array([np.inf])
    half_gap[rng.random(k) < 0.3] = np.inf
    expected = _bounds_moved(labels, upper, lower, shift, lower_shift, half_gap, 1e-3)
    is_open = np.zeros(n, dtype=bool)
    args = (labels, upper, lower, shift, lower_shift, half_gap, 1e-3, is_open)
    _kmeans_lloyd._open_rows(*args)
    for got, want in zip((upper, lower, is_open), expected):
        np.testing.assert_array_equal(got, want)
    if k == 1:  # (no other center: every row settled)
        assert not is_open.any()
    else:  # both kinds of rows were there
        assert 0 < is_open.sum() < n


def test_open_rows_are_listed_in_order():
    """The open rows' numbers, in order, for any count of rows (not only multiples of 8)
    and runs of open rows of any length."""
    rng = np.random.default_rng(3)
    rows = np.empty(_kmeans_lloyd.OPEN_ROWS, dtype=np.uint32)
    for share in (0.0, 0.02, 0.3, 0.9, 1.0):
        is_open = rng.random(_kmeans_lloyd.OPEN_ROWS) < share
        is_open[rng.integers(0, len(is_open), 20)] ^= True
        for count in (0, 1, 7, 8, 13, 4099, len(is_open)):
            n_open = _kmeans_lloyd._list_open(is_open, count, 100, rows)
            np.testing.assert_array_equal(rows[:n_open], 100 + np.flatnonzero(is_open[:count]))


@pytest.mark.parametrize("seed", range(6))
def test_random_rows_weights_and_k_up_to_16_as_sklearn(seed):
    """Grey, RGB and Lab-like float rows, weighted or not, k from 2 to 16, run to exact
    convergence (tol 0) or to max_iter: the compiled loop gives scikit-learn's fit."""
    rng = np.random.default_rng(seed)
    n_features = [1, 3, 3, 3, 5, 2][seed]
    X = rng.standard_normal((3000, n_features)) * [50.0, 20.0, 1.0, 0.1, 3.0][:n_features]
    X += rng.integers(0, 4, (3000, 1)) * 30.0  # some clumps
    weights = rng.integers(1, 50, 3000).astype(float) if seed % 2 else None
    k = [2, 8, 16, 11, 16, 5][seed]
    start = X[rng.choice(len(X), k, replace=False)] + 1e-3
    for options in ({"tol": 0.0, "max_iter": 500}, {"tol": 1e-4, "max_iter": 7}):
        fit = _kmeans_lloyd.fit(X, k, weights, init=start, **options)
        model = reference(X, k, weights, init=start, n_init=1, **options)
        assert assert_same_fit(fit, model, X) == 0
        np.testing.assert_array_equal(fit.labels, model.labels_)
    fit = _kmeans_lloyd.fit(X, k, weights, n_init=2, random_state=seed)
    model = reference(X, k, weights, n_init=2, random_state=seed)
    assert assert_same_fit(fit, model, X) <= 0.001 * len(X)


def test_the_python_driven_loop_gives_the_compiled_loops_result(monkeypatch):
    """Where numpy's row norms differed from the compiled ones, the iterations would be
    driven from Python (sklearn's row_norms): the same fit."""
    X, weights = _rows("lab")
    compiled = _kmeans_lloyd.fit(X, 7, weights, n_init=2, random_state=4, n_threads=1)
    monkeypatch.setattr(_kmeans_lloyd, "compiled_norms_match", lambda n_features: False)
    driven = _kmeans_lloyd.fit(X, 7, weights, n_init=2, random_state=4, n_threads=1)
    np.testing.assert_array_equal(driven.labels, compiled.labels)
    np.testing.assert_array_equal(driven.centers, compiled.centers)
    assert driven.inertia == compiled.inertia and driven.n_iter == compiled.n_iter


def test_first_row_drawn_from_a_shared_cdf_is_random_state_choices():
    """The first k-means++ row from one cdf made for every start: the same row and the same
    state of the RandomState afterwards as ``RandomState.choice(n, p=...)``."""
    rng = np.random.default_rng(8)
    for n in (1, 2, 7, 1000, 50_000):
        weights = rng.integers(1, 1000, n).astype(float) * 10.0 ** rng.integers(-3, 3)
        cdf = _kmeans_lloyd.first_row_cdf(weights)
        for seed in range(20):
            ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
            drawn = _kmeans_lloyd.draw_kmeans_plusplus(n, 5, weights, ours, cdf)
            expected = _kmeans_lloyd.draw_kmeans_plusplus(n, 5, weights, theirs)
            assert drawn[0] == expected[0]
            np.testing.assert_array_equal(drawn[1], expected[1])
            assert ours.random_sample() == theirs.random_sample()


def test_same_clustering_is_sklearns():
    from sklearn.cluster._kmeans import _is_same_clustering

    rng = np.random.default_rng(9)
    for _ in range(200):
        k = int(rng.integers(2, 9))
        first = rng.integers(0, k, int(rng.integers(1, 60))).astype(np.int32)
        second = rng.permutation(k)[first].astype(np.int32)  # the same clustering
        if rng.random() < 0.5:  # or not, mostly
            second[rng.integers(0, len(second))] = rng.integers(0, k)
        expected = _is_same_clustering(first, second, k)
        assert _kmeans_lloyd.same_clustering(first, second) == expected


def test_warm_up_compiles_each_loop_once():
    """First use compiles every loop called from Python for one argument type only (a
    constant passed as an argument may be compiled as a literal: another specialization,
    seconds more of compile time), and warm_up compiles everything a fit calls."""
    _kmeans_lloyd.warm_up()
    rows, weights = _rows("rgb")
    _kmeans_lloyd.fit(rows, 4, weights, n_init=3, random_state=0)
    _kmeans_lloyd.fit(rows, 4, weights, n_init=1, random_state=0, n_threads=2)  # in parts
    loops = [_kmeans_lloyd.lloyd, _kmeans_lloyd.e_step, _kmeans_lloyd.m_step]
    loops += [_kmeans_lloyd.add_deltas, _kmeans_lloyd.same_clustering, _kmeans_lloyd.inertia]
    loops += [_kmeans_lloyd._later_centers, _kmeans_lloyd.squared_norms]
    assert [len(loop.signatures) for loop in loops] == [1] * len(loops)


def _fit_in_child(queue) -> None:
    X, weights = _rows("rgb")
    serial = _kmeans_lloyd.fit(X, 5, weights, n_init=3, random_state=1, n_threads=1)
    parallel = _kmeans_lloyd.fit(X, 5, weights, n_init=3, random_state=1, n_threads=2)
    queue.put(bool(np.array_equal(serial.labels, parallel.labels)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_process_fits_in_threads_of_its_own():
    """The kept threads do not survive a fork: a child's fit makes its own (else it would
    wait forever for threads that are gone)."""
    X, weights = _rows("rgb")
    _kmeans_lloyd.fit(X, 5, weights, n_init=3, random_state=1, n_threads=2)  # pool started
    assert forked_child_result(_fit_in_child) is True


def test_kept_work_arrays_are_reused_in_a_thread_and_give_the_same_fit(monkeypatch):
    """fit keeps its centered rows, norms, transpose and cdf for the next fit in the
    same thread (their pages are not faulted in again): the same result, fit after fit,
    with other rows in between; arrays beyond KEPT_MAX_BYTES are not kept."""
    X, weights = _rows("rgb")
    first = _kmeans_lloyd.fit(X, 6, weights, n_init=2, random_state=3)
    kept = _kmeans_lloyd._KEPT.centered
    assert kept.shape == X.shape
    other, other_weights = _rows("lab")
    _kmeans_lloyd.fit(other[:500], 4, other_weights[:500], n_init=2, random_state=3)
    again = _kmeans_lloyd.fit(X, 6, weights, n_init=2, random_state=3)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.inertia == first.inertia
    cdf = _kmeans_lloyd.first_row_cdf(weights, reuse=True)
    assert _kmeans_lloyd.first_row_cdf(weights, reuse=True) is cdf
    assert _kmeans_lloyd.first_row_cdf(weights) is not cdf  # not reused unless asked
    monkeypatch.setattr(_kmeans_lloyd, "KEPT_MAX_BYTES", 100)
    _kmeans_lloyd.centered_rows(X[1:], None, True, reuse=True)  # another shape: a new one
    assert _kmeans_lloyd._KEPT.centered is None


def _limits_set_by_a_worker_lifted_by_this_thread() -> None:
    """Two fits at once: the first in a thread started outside ``threading`` (as napari's
    workers run in Qt's thread pool: Python sees a dummy thread, which a forked child
    cannot ask whether it is alive) sets the BLAS limit; this thread's, ending last, lifts
    it."""
    import _thread

    entered, leave, left = threading.Event(), threading.Event(), threading.Event()

    def worker() -> None:
        with _kmeans_lloyd._one_blas_thread():
            entered.set()
            leave.wait(timeout=60)
        left.set()

    _thread.start_new_thread(worker, ())
    assert entered.wait(timeout=60)
    with _kmeans_lloyd._one_blas_thread():
        leave.set()
        assert left.wait(timeout=60)


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_limits_lifted_by_another_thread_come_back_and_free_openblas():
    """threadpoolctl lets one thread at a time limit OpenBLAS: the fit ending last, in
    another thread than the one that set the limit, still restores the original limits
    and leaves OpenBLAS free for any thread to limit."""
    before = _blas_threads()
    _limits_set_by_a_worker_lifted_by_this_thread()
    assert _blas_threads() == before
    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    if getattr(openblas, "_SHARED_STATE", None) is not None:
        assert openblas._SHARED_STATE.controlling_thread is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_process_fits_after_fits_in_worker_threads():
    """The child has no thread of the parent's but the one that forked: its fits neither
    wait for the pool's threads nor ask a dead worker whether it holds OpenBLAS."""
    _limits_set_by_a_worker_lifted_by_this_thread()
    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    state = getattr(openblas, "_SHARED_STATE", None)
    if state is not None:  # as if the worker still held it when the process forked
        import _thread

        held = threading.Event()
        _thread.start_new_thread(
            lambda: (setattr(state, "controlling_thread", threading.current_thread()), held.set()),
            (),
        )
        assert held.wait(timeout=60)
    try:
        assert forked_child_result(_fit_in_child) is True
    finally:
        if state is not None:
            state.controlling_thread = None
