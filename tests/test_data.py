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


# -- sequences (chapter 6) ------------------------------------------------------------


def test_first_symbol_labels_the_first_symbol():
    """y is the first column of X, one of S symbols; the rest are M noise tokens; seeded."""
    X, y = data.first_symbol(500, 7, symbols=5, noise=3, rng=0)
    assert X.shape == (500, 7) and y.shape == (500,)
    assert X.dtype == np.int64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, X[:, 0])
    assert set(np.unique(y)) == set(range(5))  # every symbol is a label
    assert set(np.unique(X[:, 1:])) == {5, 6, 7}  # distractors only after the first step
    assert np.bincount(y, minlength=5).min() > 60  # about 100 of each label: chance is 1 / 5
    X2, y2 = data.first_symbol(500, 7, symbols=5, noise=3, rng=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, data.first_symbol(500, 7, symbols=5, noise=3, rng=1)[0])
    y[0] = -1
    assert X[0, 0] >= 0  # the labels are not a view of X
    assert data.first_symbol(3, 1, rng=0)[0].shape == (3, 1)  # lag 0: the symbol alone
    with pytest.raises(ValueError, match="symbols must be an integer >= 2"):
        data.first_symbol(10, 3, symbols=1)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        data.first_symbol(10, 0)
    with pytest.raises(ValueError, match="noise must be a positive integer"):
        data.first_symbol(10, 3, noise=0)


def test_digit_sequences_label_each_step_with_the_running_sum():
    """Step t of a sequence is labelled y_1 + ... + y_t of its images' digits."""
    pool = np.arange(30.0)[:, None, None] * np.ones((1, 8, 8))  # image k is filled with k
    labels = np.arange(30) % 10
    X, sums = data.digit_sequences(pool, labels, 40, 6, rng=0)
    assert X.shape == (40, 6, 1, 8, 8) and X.dtype == np.float64
    assert sums.shape == (40, 6) and sums.dtype == np.int64
    idx = X[:, :, 0, 0, 0].astype(int)  # which pool image sits at each step
    np.testing.assert_array_equal(X, pool[idx][:, :, None])
    np.testing.assert_array_equal(sums, np.cumsum(labels[idx], axis=1))
    assert np.all(np.diff(sums, axis=1) >= 0) and sums.max() <= 9 * 6
    again, _ = data.digit_sequences(pool, labels, 40, 6, rng=0)
    np.testing.assert_array_equal(X, again)
    images, y = data.digits(flatten=False)
    Xd, sd = data.digit_sequences(images, y, 5, 3, rng=1)
    assert Xd.shape == (5, 3, 1, 8, 8) and sd[:, 0].max() <= 9
    with pytest.raises(ValueError, match=r"images must have shape \(M, 8, 8\)"):
        data.digit_sequences(images.reshape(-1, 64), y, 5, 3)
    with pytest.raises(ValueError, match=r"labels must have shape \(1797,\)"):
        data.digit_sequences(images, y[:-1], 5, 3)


def test_sonnets_are_the_154_poems():
    """154 ASCII poems numbered I..CLIV in order, 14 lines each except 99 (15) and 126 (12)."""
    poems = data.sonnets()
    assert len(poems) == 154
    assert sum(len(p) for p in poems) == 95_534  # the shipped file (95,728) less its title
    assert all(p.isascii() and p.endswith("\n") for p in poems)

    def roman(n):
        out = ""
        for value, digits in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"),
                              (5, "V"), (4, "IV"), (1, "I")):  # fmt: skip
            while n >= value:
                out, n = out + digits, n - value
        return out

    heads = [p.split("\n")[0] for p in poems]
    # the shipped e-text heads sonnet 128 ("How oft when thou, my music, music play'st") "CXXXIII"
    assert heads[127] in ("CXXVIII", "CXXXIII") and poems[127].split("\n")[2].startswith("How oft when thou")
    assert heads[:127] + heads[128:] == [roman(k) for k in range(1, 155) if k != 128]
    lines = [sum(1 for line in p.split("\n")[1:] if line.strip()) for p in poems]
    assert [k + 1 for k, n in enumerate(lines) if n != 14] == [99, 126]
    assert lines[98] == 15 and lines[125] == 12
    assert poems[17].split("\n")[2] == "Shall I compare thee to a summer's day?"
    assert poems[0].startswith("I\n\nFrom fairest creatures we desire increase,\n")


def test_sonnet_split_is_a_seeded_partition_of_whole_poems():
    poems = data.sonnets()
    train_text, val_text = data.sonnet_split(0.1, rng=0)
    in_train = [p in train_text for p in poems]
    in_val = [p in val_text for p in poems]
    assert all(a != b for a, b in zip(in_train, in_val, strict=True))  # each poem in exactly one part
    assert sum(in_val) == 15  # round(154 * 0.1)
    n_train = 154 - 15
    # nothing else: the poems and one newline between neighbours
    assert len(train_text) == sum(len(p) for p, t in zip(poems, in_train, strict=True) if t) + n_train - 1
    assert len(val_text) == sum(len(p) for p, v in zip(poems, in_val, strict=True) if v) + 15 - 1
    assert data.sonnet_split(0.1, rng=0) == (train_text, val_text)
    assert data.sonnet_split(0.1, rng=1)[1] != val_text
    assert data.sonnet_split(0.001, rng=0)[1].count("\n\n") >= 1  # at least one poem
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
            data.sonnet_split(bad)


def test_char_vocab_round_trip_and_unknown_characters():
    text = "to be, or not to be"
    vocab = data.CharVocab(text)
    assert len(vocab) == 8 and vocab.chars == " ,benort"  # sorted by code point
    ids = vocab.encode("not to be")
    assert ids.dtype == np.int64 and ids.shape == (9,)
    assert vocab.decode(ids) == "not to be"
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.decode(ids.reshape(3, 3)) == "not to be"
    assert vocab.encode("").shape == (0,) and vocab.decode(np.array([], dtype=int)) == ""
    with pytest.raises(ValueError, match=r"characters not in the vocabulary: 'NT'"):
        vocab.encode("Not To be")
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 7\]"):
        vocab.decode(np.array([0, 8]))
    with pytest.raises(ValueError, match="non-empty string"):
        data.CharVocab("")
    sonnet_vocab = data.CharVocab("".join(data.sonnets()))
    assert "\n" in sonnet_vocab.chars and len(sonnet_vocab) < 70


def test_stream_batches_continue_each_row_and_shift_the_target():
    """Row n of window k+1 continues row n of window k; y is x shifted by one token."""
    ids = np.arange(103)
    windows = list(data.stream_batches(ids, 4, 7))
    per_row = (103 - 1) // 4  # 25 positions in each of the 4 rows
    assert [x.shape for x, _ in windows] == [(4, 7)] * 3 + [(4, 4)]  # the last window is shorter
    for x, y in windows:
        np.testing.assert_array_equal(y, ids[x + 1])  # the next token
    for (x0, _), (x1, _) in zip(windows[:-1], windows[1:], strict=True):
        np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)  # each row goes on where it stopped
    rows = np.concatenate([x for x, _ in windows], axis=1)
    np.testing.assert_array_equal(rows, ids[: 4 * per_row].reshape(4, per_row))
    text_ids = data.CharVocab("abcab").encode("abcabcabcab")
    (x, y), = data.stream_batches(text_ids, 2, 10)
    np.testing.assert_array_equal(x, [[0, 1, 2, 0, 1], [2, 0, 1, 2, 0]])
    np.testing.assert_array_equal(y, [[1, 2, 0, 1, 2], [0, 1, 2, 0, 1]])
    with pytest.raises(ValueError, match="1-D integer array"):
        data.stream_batches(ids.reshape(1, -1), 2, 5)
    with pytest.raises(ValueError, match="1-D integer array"):
        data.stream_batches(ids.astype(float), 2, 5)
    with pytest.raises(ValueError, match="too few for 8 rows"):
        data.stream_batches(np.arange(8), 8, 5)
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        data.stream_batches(ids, 2, 0)


def test_place_on_canvas_pastes_each_image_at_its_offset():
    X, _ = data.digits(flatten=False)
    canvas, offsets = data.place_on_canvas(X[:300], 16, rng=4)
    assert canvas.shape == (300, 16, 16) and canvas.dtype == X.dtype
    assert offsets.min() == 0 and offsets.max() == 8  # every position 0..16-8 is possible
    for img, c, (r, k) in zip(X[:300], canvas, offsets, strict=True):
        np.testing.assert_array_equal(c[r:r + 8, k:k + 8], img)
        assert c.sum() == pytest.approx(img.sum())  # nothing anywhere else
    again, off2 = data.place_on_canvas(X[:300], 16, rng=4)
    np.testing.assert_array_equal(again, canvas)
    np.testing.assert_array_equal(off2, offsets)
    same, zero = data.place_on_canvas(X[:3], 8)
    np.testing.assert_array_equal(same, X[:3])
    assert not zero.any()


def test_place_on_canvas_bad_input():
    with pytest.raises(ValueError, match=r"\(N, h, w\)"):
        data.place_on_canvas(np.zeros((3, 64)))
    with pytest.raises(ValueError, match="smaller than the images"):
        data.place_on_canvas(np.zeros((3, 8, 8)), 6)
