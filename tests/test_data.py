"""The shipped digits, seeded (stratified) splits and mini-batches (dlbook.data)."""

from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook as dl
from dlbook import data, train

# -- digits -------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_ranges():
    X, y = data.digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y)
    assert len(counts) == 10 and counts.sum() == 1797
    assert counts.min() >= 170 and counts.max() <= 190  # about 180 per class
    raw, y2 = data.digits(flatten=False, scale=False)
    assert raw.shape == (1797, 8, 8)
    np.testing.assert_array_equal(raw, np.round(raw))  # counts of pixels: integers 0..16
    assert raw.min() == 0 and raw.max() == 16
    np.testing.assert_array_equal(raw.reshape(1797, 64) / 16.0, X)
    np.testing.assert_array_equal(y, y2)
    X32, _ = data.digits(dtype=np.float32)
    assert X32.dtype == np.float32 and np.allclose(X32, X)


def test_digits_match_the_source_rows():
    # the first rows of scikit-learn's digits.csv.gz (64 pixels, then the label)
    raw, y = data.digits(flatten=True, scale=False)
    assert list(raw[0, :16]) == [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]
    assert list(raw[1, :8]) == [0, 0, 0, 12, 13, 5, 0, 0]
    assert list(y[:10]) == list(range(10))
    img, _ = data.digits(flatten=False, scale=False)
    assert list(img[0, 1]) == [0, 0, 13, 15, 10, 15, 5, 0]  # row-major 8x8


def test_digits_returns_fresh_arrays_and_ships_its_license():
    X, y = data.digits()
    X[:] = -1.0
    y[:] = 99
    X2, y2 = data.digits()
    assert X2.min() == 0.0 and y2.max() == 9
    res = resources.files("dlbook").joinpath("resources")
    text = res.joinpath("DIGITS_LICENSE.txt").read_text(encoding="utf-8")
    for needle in ("Alpaydin", "Kaynak", "https://doi.org/10.24432/C50P49", "CC BY 4.0", "scikit-learn"):
        assert needle in text
    assert 20_000 < len(res.joinpath("digits.npz").read_bytes()) < 100_000  # compact: tens of KB
    with pytest.raises(TypeError, match="float32 or float64"):
        data.digits(dtype=np.int64)


# -- split ----------------------------------------------------------------------------


def test_stratified_split_keeps_class_proportions():
    X, y = data.digits()
    parts = data.split(X, y, (0.6, 0.2, 0.2), rng=0, stratify=True)
    ys = [p[1] for p in parts]
    assert sum(len(v) for v in ys) == 1797
    counts = np.bincount(y)
    for v, frac in zip(ys, (0.6, 0.2, 0.2), strict=True):
        assert np.all(np.abs(np.bincount(v, minlength=10) - frac * counts) <= 1)
        assert not np.all(np.diff(v) >= 0)  # shuffled, not grouped by class
    # a partition: every image lands in exactly one part
    rows = np.concatenate([p[0] for p in parts])
    assert len(np.unique(rows, axis=0)) == len(np.unique(X, axis=0))
    again = data.split(X, y, (0.6, 0.2, 0.2), rng=0, stratify=True)
    other = data.split(X, y, (0.6, 0.2, 0.2), rng=1, stratify=True)
    np.testing.assert_array_equal(parts[1][0], again[1][0])
    assert not np.array_equal(parts[1][0], other[1][0])


def test_split_partitions_indices_and_checks_arguments():
    idx = np.arange(50)
    for stratify in (False, True):
        parts = data.split(idx, idx % 5, (0.5, 0.5), rng=2, stratify=stratify)
        assert sorted(np.concatenate([p[0] for p in parts])) == list(range(50))
        for Xp, yp in parts:
            np.testing.assert_array_equal(Xp % 5, yp)  # rows stay with their labels
    with pytest.raises(ValueError, match="1-D class labels"):
        data.split(idx, np.zeros((50, 2)), (0.5, 0.5), stratify=True)
    with pytest.raises(ValueError, match="positive and sum to 1"):
        data.split(idx, idx, (0.5, -0.2, 0.7))


# -- batches ------------------------------------------------------------------------


def test_batches_cover_every_sample_once_per_epoch():
    X = np.arange(23.0)[:, None] * np.ones((1, 3))
    y = np.arange(23)
    gen = np.random.default_rng(0)
    epochs = [list(data.batches(X, y, 5, rng=gen)) for _ in range(2)]
    for ep in epochs:
        assert [len(b[1]) for b in ep] == [5, 5, 5, 5, 3]
        order = np.concatenate([b[1] for b in ep])
        assert sorted(order) == list(range(23))
        for xb, yb in ep:
            np.testing.assert_array_equal(xb[:, 0], yb)  # rows stay with their labels
    orders = [np.concatenate([b[1] for b in ep]) for ep in epochs]
    assert not np.array_equal(orders[0], orders[1])  # a new order each epoch
    same = np.concatenate([b[1] for b in data.batches(X, y, 5, rng=0)])
    np.testing.assert_array_equal(same, np.concatenate([b[1] for b in data.batches(X, y, 5, rng=0)]))
    assert data.num_batches(23, 5) == 5 and data.num_batches(23, 5, drop_last=True) == 4


def test_batches_in_order_and_drop_last():
    X = np.arange(10.0)[:, None]
    y = np.arange(10)
    plain = list(data.batches(X, y, 4, shuffle=False))
    assert [b[1].tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert np.shares_memory(plain[0][0], X)  # in order: views, no copies
    dropped = list(data.batches(X, y, 4, rng=0, drop_last=True))
    assert [len(b[1]) for b in dropped] == [4, 4]
    assert len(set(np.concatenate([b[1] for b in dropped]))) == 8


def test_batches_check_arguments_when_called():
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        data.batches(X, y, 0, rng=0)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        data.batches(X, y, 4)  # shuffling needs a seed
    with pytest.raises(ValueError, match=r"same number of rows, got shapes \(10, 2\), \(9,\)"):
        data.batches(X, y[:9], 4, rng=0)
    with pytest.raises(TypeError, match="must be a NumPy array"):
        data.batches(X.tolist(), y, 4, rng=0)
    with pytest.raises(TypeError, match="int seed or a np.random.Generator"):
        data.batches(X, y, 4, rng=1.5)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 70), drop_last=st.booleans(), seed=st.integers(0, 99))
def test_batches_property_a_permutation_or_its_prefix(n, batch_size, drop_last, seed):
    X = np.arange(n, dtype=np.float64)[:, None]
    y = np.arange(n)
    got = [b[1] for b in data.batches(X, y, batch_size, rng=seed, drop_last=drop_last)]
    assert len(got) == (data.num_batches(n, batch_size, drop_last) if n >= batch_size or not drop_last else 0)
    flat = np.concatenate(got) if got else np.array([], dtype=int)
    expected = n - n % batch_size if drop_last else n
    assert len(flat) == expected and len(np.unique(flat)) == expected
    assert all(len(b) == batch_size for b in got[:-1])


def test_digits_train_an_mlp_end_to_end():
    X, y = data.digits()
    (Xt, yt), (Xv, yv) = data.split(X, y, (0.8, 0.2), rng=0, stratify=True)
    net = dl.models.mlp([64, 32, 10], "relu", rng=0)
    h = train.fit(net, dl.losses.softmax_cross_entropy, dl.optim.Adam(net, 0.01), Xt, yt,
                     epochs=8, batch_size=64, rng=0, val=(Xv, yv), progress=False)
    assert h.val_accuracy[-1] > 0.93


@pytest.mark.parametrize("maker", [dl.data.spirals, dl.data.moons, dl.data.circles])
def test_data_sets_are_deterministic(maker):
    X1, y1 = maker(rng=3)
    X2, y2 = maker(rng=3)
    X3, _ = maker(rng=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert X1.shape == (len(y1), 2) and y1.dtype == np.int64


def test_split_is_a_seeded_partition():
    X = np.arange(100.0)[:, None]
    y = np.arange(100)
    parts = dl.data.split(X, y, (0.6, 0.2, 0.2), rng=0)
    assert [len(p[1]) for p in parts] == [60, 20, 20]
    assert sorted(np.concatenate([p[1] for p in parts])) == list(range(100))
    again = dl.data.split(X, y, (0.6, 0.2, 0.2), rng=0)
    np.testing.assert_array_equal(parts[0][1], again[0][1])
    with pytest.raises(ValueError, match="sum to 1"):
        dl.data.split(X, y, (0.5, 0.2))
    with pytest.raises(ValueError, match="lengths differ"):
        dl.data.split(X, y[:5])


def test_batches_of_a_tuple_move_in_lockstep():
    src = np.arange(12.0)[:, None] * np.ones((1, 3))
    tgt_in, tgt_out = np.arange(12)[:, None] * 10, np.arange(12)
    epoch = list(data.batches((src, tgt_in, tgt_out), 5, rng=0))
    assert [len(b) for b in epoch] == [3, 3, 3] and [len(b[2]) for b in epoch] == [5, 5, 2]
    for a, b, c in epoch:
        np.testing.assert_array_equal(a[:, 0], c)
        np.testing.assert_array_equal(b[:, 0], 10 * c)
    pairs = list(data.batches(src, tgt_out, 5, rng=0))  # the (X, y) form draws the same order
    order = np.concatenate([b[2] for b in epoch])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pairs]), order)
    with pytest.raises(ValueError, match="same number of rows"):
        data.batches((src, tgt_out[:5]), 4, rng=0)
    with pytest.raises(ValueError, match="at least two arrays"):
        data.batches((src,), 4, rng=0)
