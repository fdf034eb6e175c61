"""Linear regions (dlbook.regions): constructions, exact piece counts, sampling, region maps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook as dl
from dlbook import regions as R
from dlbook.activations import Activation
from dlbook.layers import Linear


def net_from(*spec):
    """Sequential from ('lin', W, b) / ('act', name, params) tuples, weights given exactly."""
    layers = []
    for item in spec:
        if item[0] == "lin":
            W = np.asarray(item[1], dtype=np.float64)
            lin = Linear(W.shape[0], W.shape[1], rng=0)
            lin.params["W"][...] = W
            lin.params["b"][...] = item[2]
            layers.append(lin)
        else:
            layers.append(Activation(item[1], **item[2]))
    return dl.Sequential(layers)


def tent_power(x, k):
    for _ in range(k):
        x = np.where(x <= 0.5, 2.0 * x, 2.0 - 2.0 * x)
    return x


def zigzag_net(k):
    """Three ReLUs per layer fold [0, 1] three times: 3**k pieces, kinks at thirds (inexact in binary)."""
    spec = []
    for i in range(k):
        W = [[1.0, 1.0, 1.0]] if i == 0 else np.outer([3.0, -6.0, 6.0], [1.0, 1.0, 1.0])
        spec += [("lin", W, [0.0, -1 / 3, -2 / 3]), ("act", "relu", {})]
    return net_from(*spec, ("lin", [[3.0], [-6.0], [6.0]], 0.0))


def segment_values(net, a, b, t):
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return net(a + np.asarray(t)[:, None] * (b - a))


def random_segment(gen, d, scale=2.0):
    return gen.normal(size=d) * scale, gen.normal(size=d) * scale


# ---------------------------------------------------------------------------
# interpolant_net
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3, 10, 60])
def test_interpolant_equals_np_interp_on_the_knots_range(seed, n):
    gen = np.random.default_rng(seed)
    knots = np.cumsum(gen.uniform(0.05, 1.0, n)) - 3.0
    values = gen.normal(size=n) * 2.0
    net = R.interpolant_net(knots, values)
    assert net[0].params["W"].shape == (1, n - 1)
    x = np.concatenate([knots, gen.uniform(knots[0], knots[-1], 500)])
    got = net(x[:, None])[:, 0]
    # the output sums v0 + sum_i c_i relu(x - k_i): rounding is relative to the sum of |terms|
    terms = np.abs(values[0]) + np.maximum(x[:, None] - knots[:-1], 0) @ np.abs(net[2].params["W"][:, 0])
    assert np.all(np.abs(got - np.interp(x, knots, values)) <= 4 * n * np.finfo(float).eps * terms)
    if n <= 10:  # sane scales: within 1e-12
        np.testing.assert_allclose(got, np.interp(x, knots, values), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [2, 9, 65, 513])
def test_interpolant_of_a_smooth_target_within_1e_12(n):
    knots = np.linspace(-2.0, 2.0, n)
    net = R.interpolant_net(knots, np.sin(3 * knots))
    x = np.linspace(-2.0, 2.0, 20_001)
    np.testing.assert_allclose(net(x[:, None])[:, 0], np.interp(x, knots, np.sin(3 * knots)), atol=1e-12)


def test_interpolant_outside_the_knots_and_clamp():
    knots, values = np.array([0.0, 1.0, 3.0]), np.array([1.0, 3.0, 2.0])
    net = R.interpolant_net(knots, values)
    left, right = np.array([[-5.0], [-0.5]]), np.array([[4.0], [13.0]])
    np.testing.assert_allclose(net(left)[:, 0], [1.0, 1.0], rtol=0, atol=1e-15)  # all units off
    np.testing.assert_allclose(net(right)[:, 0], [1.5, -3.0], rtol=1e-14)  # last slope -1/2 continues
    clamped = R.interpolant_net(knots, values, clamp=True)
    assert clamped[0].params["W"].shape == (1, 3)
    x = np.linspace(-5, 13, 1001)
    np.testing.assert_allclose(clamped(x[:, None])[:, 0], np.interp(x, knots, values), atol=1e-13)


def test_interpolant_float32_and_construction():
    knots, values = np.array([-1.0, 0.0, 2.0, 2.5]), np.array([0.5, -1.0, 3.0, 3.0])
    net = R.interpolant_net(knots, values, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in net.params.values())
    np.testing.assert_array_equal(net[0].params["b"], -knots[:-1].astype(np.float32))
    # output weights: s0 = -1.5, then the slope changes 2 - (-1.5) and 0 - 2
    np.testing.assert_allclose(net[2].params["W"][:, 0], [-1.5, 3.5, -2.0])
    x = np.linspace(-1, 2.5, 301, dtype=np.float32)[:, None]
    assert net(x).dtype == np.float32
    np.testing.assert_allclose(net(x)[:, 0], np.interp(x[:, 0], knots, values), atol=2e-6)


@pytest.mark.parametrize(
    ("knots", "values", "match"),
    [
        ([0.0, 1.0, 1.0], [0.0, 1.0, 2.0], "strictly increasing"),
        ([0.0, 2.0, 1.0], [0.0, 1.0, 2.0], "strictly increasing"),
        ([0.0, 1.0], [0.0, 1.0, 2.0], "same length"),
        ([0.0], [1.0], "at least 2"),
        ([0.0, np.nan], [1.0, 2.0], "finite"),
        ([[0.0, 1.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_interpolant_rejects_bad_knots(knots, values, match):
    with pytest.raises(ValueError, match=match):
        R.interpolant_net(knots, values)


def test_interpolant_piece_counts():
    gen = np.random.default_rng(3)
    for n in (2, 5, 17):
        knots = np.sort(gen.uniform(-2, 2, n))
        values = np.cumsum(np.where(np.arange(n) % 2, 1.0, -1.0) * gen.uniform(0.5, 1.5, n))  # zigzag
        net = R.interpolant_net(knots, values)
        assert R.count_pieces(net, knots[0], knots[-1], kind="function") == n - 1
        assert R.count_pieces(net, knots[0], knots[-1], kind="pattern") == n - 1
        # on a wider segment the first kink is inside too: m + 1 pieces with m = n - 1 units
        assert R.count_pieces(net, knots[0] - 1, knots[-1] + 1) == n
        bp = R.breakpoints(net, knots[0], knots[-1], kind="function")
        np.testing.assert_allclose(knots[0] + bp * (knots[-1] - knots[0]), knots[1:-1], rtol=1e-13)
    # equal consecutive slopes: the function has fewer pieces than the pattern
    collinear = R.interpolant_net([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 1.0, 0.0])
    assert R.count_pieces(collinear, 0.0, 4.0, kind="pattern") == 4
    assert R.count_pieces(collinear, 0.0, 4.0, kind="function") == 2
    np.testing.assert_allclose(R.breakpoints(collinear, 0.0, 4.0, kind="function"), [0.5])


# ---------------------------------------------------------------------------
# sawtooth_net
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(1, 13))
def test_sawtooth_has_2_to_the_k_pieces(k):
    net = R.sawtooth_net(k)
    assert len(net) == 2 * k + 1
    assert R.count_pieces(net, 0.0, 1.0, kind="function") == 2**k
    assert R.count_pieces(net, 0.0, 1.0, kind="pattern") == 2**k
    # the corners are exactly the dyadic points j / 2^k
    np.testing.assert_array_equal(R.breakpoints(net, 0.0, 1.0, kind="function"), np.arange(1, 2**k) / 2**k)
    x = np.linspace(0.0, 1.0, 4097)
    y = net(x[:, None])[:, 0]
    assert y.min() >= 0.0 and y.max() <= 1.0
    np.testing.assert_allclose(y, tent_power(x, k), rtol=0, atol=1e-12)


def test_sawtooth_float32_and_sampling():
    net = R.sawtooth_net(6, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert R.count_pieces(net, 0.0, 1.0) == 64
    for k in (1, 4, 9):
        saw = R.sawtooth_net(k)
        assert R.count_pieces_sampled(saw, 0.0, 1.0, n=20_001) == 2**k
        assert R.count_pieces_sampled(saw, 0.0, 1.0, n=20_001, kind="function") == 2**k


@pytest.mark.parametrize("depth", [0, -1, 1.5, True, "3"])
def test_sawtooth_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        R.sawtooth_net(depth)


def test_thirds_are_counted_exactly_despite_rounding():
    # The zigzag's kinks at 1/3, 2/3 are not binary fractions: later units touch their kink at
    # earlier breakpoints up to rounding. Without snapping this gives 28 instead of 27 at k = 3.
    for k in range(1, 7):
        assert R.count_pieces(zigzag_net(k), 0.0, 1.0, kind="function") == 3**k
        assert R.count_pieces(zigzag_net(k), 0.0, 1.0, kind="pattern") == 3**k


# ---------------------------------------------------------------------------
# Exact breakpoints
# ---------------------------------------------------------------------------
def test_single_relu():
    net = net_from(("lin", [[1.0]], -0.25), ("act", "relu", {}))
    np.testing.assert_array_equal(R.breakpoints(net, -1.0, 1.0), [0.625])
    assert R.count_pieces(net, -1.0, 1.0, kind="function") == 2
    assert R.count_pieces(net, 0.5, 1.0) == 1  # kink outside the segment
    assert R.count_pieces(net, 1.0, -1.0) == 2  # direction does not matter
    assert R.count_pieces(net, 0.25, 1.0) == 1  # kink on an end point: no interior break


def test_one_layer_breakpoints_match_the_closed_form():
    gen = np.random.default_rng(4)
    for d in (1, 3, 6):
        net = R.random_relu_net(d, 20, 1, rng=gen, bias_std=1.0)
        a, b = random_segment(gen, d)
        W, bias = net[0].params["W"], net[0].params["b"]
        t = -(a @ W + bias) / ((b - a) @ W)  # where each unit's pre-activation is 0
        expected = np.sort(t[(t > 0) & (t < 1)])
        np.testing.assert_allclose(R.breakpoints(net, a, b), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("act", "params"),
    [
        ("relu", {}),
        ("leaky_relu", {"negative_slope": 0.2}),
        ("hardtanh", {}),
        ("relu6", {}),
        ("hard_sigmoid", {}),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_breakpoints_are_exact(act, params, seed):
    gen = np.random.default_rng(seed)
    net = dl.models.mlp([3, 16, 16, 16, 2], act, init="he", rng=gen, **params)
    for layer in net.layers:
        if isinstance(layer, Linear):
            layer.params["b"][...] = gen.normal(size=layer.params["b"].shape)
    a, b = random_segment(gen, 3, scale=6.0)
    bp = R.breakpoints(net, a, b)
    assert bp.size >= 5 and np.all(np.diff(bp) > 0) and bp[0] > 0 and bp[-1] < 1
    # the pattern just left and right of every breakpoint differs
    ends = np.concatenate([[0.0], bp, [1.0]])
    delta = np.minimum(1e-9, np.diff(ends).min() / 3)
    left = R.activation_pattern(net, a + (bp - delta)[:, None] * (b - a))
    right = R.activation_pattern(net, a + (bp + delta)[:, None] * (b - a))
    assert np.all(np.any(left != right, axis=1))
    # and the net is affine on every piece: values at interior points lie on the chord
    u = gen.uniform(0.05, 0.95, size=(ends.size - 1, 1))
    inner = ends[:-1, None] + u * np.diff(ends)[:, None]
    y_ends = segment_values(net, a, b, ends)
    chord = (1 - u) * y_ends[:-1] + u * y_ends[1:]
    scale = np.abs(y_ends).max()
    np.testing.assert_allclose(segment_values(net, a, b, inner[:, 0]), chord, atol=1e-11 * scale)
    # and the sampled count cannot exceed the exact one; it finds every piece wider than 2 samples
    sampled = R.count_pieces_sampled(net, a, b, n=20_000)
    assert sampled <= bp.size + 1
    if np.diff(ends).min() > 2 / 19_999:
        assert sampled == bp.size + 1


def test_function_breakpoints_are_real_kinks():
    gen = np.random.default_rng(8)
    net = R.random_relu_net(2, 12, 3, rng=gen, bias_std=0.5)
    a, b = np.array([-2.0, -1.0]), np.array([2.0, 1.5])
    bp = R.breakpoints(net, a, b, kind="function")
    pattern = R.breakpoints(net, a, b, kind="pattern")
    assert bp.size >= 3 and np.all(np.isin(bp, pattern))
    ends = np.concatenate([[0.0], bp, [1.0]])
    y = segment_values(net, a, b, ends)[:, 0]
    slopes = np.diff(y) / np.diff(ends)
    # neighbouring pieces have different slopes, measured from the net's own values
    assert np.all(np.abs(np.diff(slopes)) > 1e-6 * np.abs(slopes).max())


def test_degenerate_units_do_not_blow_up():
    zero_unit = net_from(
        ("lin", [[1.0, 0.0, -1.0]], [0.0, 0.0, 0.5]),
        ("act", "relu", {}),
        ("lin", [[1.0], [1.0], [1.0]], 0.0),
    )
    assert R.count_pieces(zero_unit, -1.0, 1.0) == 3  # the all-zero unit never crosses
    # 0.1 h + 0.2 h - 0.3 h: zero up to rounding (the stored weights sum to 2.8e-17), which is
    # far inside the snapping tolerance, so the second-layer unit counts as off: one flat piece
    kinks = np.linspace(0.0, 0.9, 10)
    cancel = net_from(
        ("lin", [[1.0] * 13], [0.0] * 3 + list(-kinks)),
        ("act", "relu", {}),
        ("lin", np.r_[[0.1, 0.2, -0.3], np.zeros(10)][:, None], 0.0),
        ("act", "relu", {}),
        ("lin", [[1.0]], 0.0),
    )
    assert R.count_pieces(cancel, -1.0, 1.0, kind="function") == 1
    assert R.count_pieces(cancel, -1.0, 1.0) == 11
    nothing = net_from(("lin", [[0.0, 0.0]], [0.0, 0.0]), ("act", "relu", {}), ("lin", [[1.0], [1.0]], 0.0))
    assert R.count_pieces(nothing, -1.0, 1.0, kind="function") == 1
    assert R.breakpoints(nothing, -1.0, 1.0).size == 0
    net = R.random_relu_net(3, 8, 2, rng=0)
    point = np.array([0.3, -0.2, 0.1])
    assert R.count_pieces(net, point, point, kind="function") == 1  # zero-length segment


def test_identity_leaky_and_nested_layers():
    # leaky ReLU with slope 1 is linear: the pattern still changes, the function does not
    net = net_from(
        ("lin", [[1.0, -1.0]], [0.2, 0.1]),
        ("act", "leaky_relu", {"negative_slope": 1.0}),
        ("act", "identity", {}),
        ("lin", [[1.0], [2.0]], 0.0),
    )
    assert R.count_pieces(net, -1.0, 1.0, kind="pattern") == 3
    assert R.count_pieces(net, -1.0, 1.0, kind="function") == 1
    nested = dl.Sequential(dl.Sequential(net[0], net[1]), net[2], dl.Sequential(net[3]))
    np.testing.assert_array_equal(R.breakpoints(nested, -1.0, 1.0), R.breakpoints(net, -1.0, 1.0))
    assert R.activation_pattern(nested, np.zeros((4, 1))).shape == (4, 2)


# ---------------------------------------------------------------------------
# Exact versus sampled counts on random networks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("width", "depth"), [(3, 1), (4, 2), (6, 3), (16, 4)])
def test_sampled_count_never_exceeds_exact_and_matches_when_fine(width, depth):
    n = 100_000
    gen = np.random.default_rng(width * 10 + depth)
    resolved = {"pattern": 0, "function": 0}
    for _ in range(5):
        net = R.random_relu_net(2, width, depth, rng=gen, bias_std=0.5)
        a, b = random_segment(gen, 2)
        for kind, samples_needed in (("pattern", 2), ("function", 4)):
            exact = R.count_pieces(net, a, b, kind=kind)
            sampled = R.count_pieces_sampled(net, a, b, n=n, kind=kind)
            assert 1 <= sampled <= exact
            gaps = np.diff(np.concatenate([[0.0], R.breakpoints(net, a, b, kind=kind), [1.0]]))
            if gaps.min() > samples_needed / (n - 1):  # every piece holds enough samples to be seen
                assert sampled == exact
                resolved[kind] += 1
    assert resolved["pattern"] >= 3 and resolved["function"] >= 3


def test_sampling_skips_points_on_a_boundary():
    # units x and -x cross together at x = 0, where the pattern (off, off) matches neither side:
    # a sample exactly there must not count as a third region
    net = net_from(("lin", [[1.0, -1.0]], [0.0, 0.0]), ("act", "relu", {}))
    assert R.count_pieces(net, -1.0, 1.0) == 2
    assert R.count_pieces_sampled(net, -1.0, 1.0, n=101) == 2  # t = 1/2 lands on x = 0
    assert R.count_pieces_sampled(net, -1.0, 1.0, n=100) == 2


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 12), d=st.integers(1, 5), seed=st.integers(0, 2**31), scale=st.sampled_from([0.1, 1, 10])
)
def test_one_hidden_layer_has_at_most_m_plus_1_pieces(m, d, seed, scale):
    gen = np.random.default_rng(seed)
    net = R.random_relu_net(d, m, 1, d_out=2, rng=gen, bias_std=1.0)
    a, b = random_segment(gen, d, scale)
    assert R.count_pieces(net, a, b, kind="function") <= R.count_pieces(net, a, b) <= m + 1
    assert R.max_pieces_line([m]) == m + 1


def test_random_nets_stay_below_the_product_bound():
    gen = np.random.default_rng(2)
    for widths in ([5, 5, 5], [8, 3, 8, 3]):
        layers = [Linear(2, widths[0], rng=gen, init="he")]
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [Activation("relu"), Linear(w_in, w_out, rng=gen, init="he")]
        layers += [Activation("relu"), Linear(widths[-1], 1, rng=gen)]
        net = dl.Sequential(layers)
        for _ in range(5):
            a, b = random_segment(gen, 2, scale=5.0)
            assert R.count_pieces(net, a, b) <= R.max_pieces_line(widths)


def test_max_pieces_line():
    assert R.max_pieces_line([2] * 10) == 3**10
    assert R.max_pieces_line([32] * 8) == 33**8  # exact Python int
    assert R.max_pieces_line(np.array([1, 4])) == 10
    with pytest.raises(ValueError, match="every width"):
        R.max_pieces_line([3, 0])
    with pytest.raises(TypeError, match="sequence"):
        R.max_pieces_line(5)


# ---------------------------------------------------------------------------
# activation_pattern and region_map
# ---------------------------------------------------------------------------
def test_activation_pattern_columns():
    gen = np.random.default_rng(0)
    net = R.random_relu_net(3, 5, 2, rng=gen)
    x = gen.normal(size=(50, 3))
    z1 = x @ net[0].params["W"] + net[0].params["b"]
    z2 = np.maximum(z1, 0) @ net[2].params["W"] + net[2].params["b"]
    pattern = R.activation_pattern(net, x)
    assert pattern.dtype == bool
    np.testing.assert_array_equal(pattern, np.hstack([z1 > 0, z2 > 0]))
    hard = net_from(("lin", [[1.0, 2.0]], [0.0, 0.0]), ("act", "hardtanh", {}), ("lin", [[1.0], [1.0]], 0.0))
    np.testing.assert_array_equal(  # two columns per unit: z > -1, z > 1
        R.activation_pattern(hard, np.array([[-2.0], [0.7]])),
        [[False, False, False, False], [True, False, True, True]],
    )


def test_region_map_quadrants():
    net = net_from(
        ("lin", [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), ("act", "relu", {}), ("lin", [[1.0], [1.0]], 0.0)
    )
    labels, count = R.region_map(net, resolution=100)
    assert count == 4 and labels.shape == (100, 100) and labels.dtype == np.int64
    # rows are y (from ylim[0] up), columns x; ids in order of first appearance
    assert labels[0, 0] == 0 and labels[0, -1] == 1 and labels[-1, 0] == 2 and labels[-1, -1] == 3
    for rows in (slice(0, 50), slice(50, 100)):
        for cols in (slice(0, 50), slice(50, 100)):
            assert np.unique(labels[rows, cols]).size == 1
    labels2, count2 = R.region_map(net, xlim=(0.5, 1.0), ylim=(-1.0, -0.5), resolution=7)
    assert count2 == 1 and np.all(labels2 == 0)


def test_region_map_samples_cell_centres():
    # (|x|, |y|) as ReLU(x) + ReLU(-x): on the line x = 0 both units are off, a
    # pattern of its own. A grid through the end points of [-1, 3] with 5 points
    # would sample x = 0 and y = 0 exactly and report 3 x 3 = 9 "regions"; the
    # cell centres (-0.6, 0.2, 1.0, 1.8, 2.6) do not, and see the 4 quadrants.
    fold = net_from(
        ("lin", [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]], [0.0] * 4),
        ("act", "relu", {}),
        ("lin", [[1.0], [1.0], [1.0], [1.0]], 0.0),
    )
    labels, count = R.region_map(fold, xlim=(-1.0, 3.0), ylim=(-1.0, 3.0), resolution=5)
    assert count == 4
    assert np.unique(labels[:1, :1]).size == 1 and labels[0, 0] != labels[-1, -1]


def test_region_map_three_lines_make_seven_regions():
    # x = 0, y = 0, x + y = 1/2: all three crossings and the bounded triangle are inside [-1, 1]^2
    net = net_from(("lin", [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [0.0, 0.0, -0.5]), ("act", "relu", {}))
    labels, count = R.region_map(net, resolution=200)
    assert count == 7 == 1 + 3 + 3
    first = np.unique(labels.ravel(), return_index=True)[1]
    assert np.all(np.diff(first) > 0)  # numbered by first appearance


@pytest.mark.parametrize("w", [1, 2, 5, 12])
def test_one_layer_regions_obey_the_arrangement_bound(w):
    for seed in range(3):
        net = R.random_relu_net(2, w, 1, rng=seed, bias_std=0.5)
        labels, count = R.region_map(net, resolution=150)
        assert count <= 1 + w + w * (w - 1) // 2
        assert set(np.unique(labels)) == set(range(count))


def test_region_map_without_kinks_and_errors():
    linear = net_from(("lin", [[1.0], [2.0]], 0.0), ("act", "identity", {}))
    labels, count = R.region_map(linear, resolution=5)
    assert count == 1 and labels.shape == (5, 5)
    with pytest.raises(ValueError, match="2 inputs"):
        R.region_map(R.random_relu_net(3, 4, 1, rng=0))
    with pytest.raises(ValueError, match="low < high"):
        R.region_map(linear, xlim=(1.0, -1.0))
    with pytest.raises(ValueError, match="resolution"):
        R.region_map(linear, resolution=1)


# ---------------------------------------------------------------------------
# random_relu_net
# ---------------------------------------------------------------------------
def test_random_relu_net_structure_and_biases():
    net = R.random_relu_net(3, 7, 4, d_out=2, rng=5)
    linears = [layer for layer in net.layers if isinstance(layer, Linear)]
    assert [lin.params["W"].shape for lin in linears] == [(3, 7), (7, 7), (7, 7), (7, 7), (7, 2)]
    assert sum(isinstance(layer, Activation) for layer in net.layers) == 4
    biases = np.concatenate([lin.params["b"] for lin in linears])
    assert np.all(biases != 0) and 0.03 < biases.std() < 0.3  # default scale 0.1
    again = R.random_relu_net(3, 7, 4, d_out=2, rng=5)
    for k, p in net.params.items():
        np.testing.assert_array_equal(p, again.params[k])
    zero = R.random_relu_net(3, 7, 4, rng=5, bias_std=0.0)
    assert all(np.all(lin.params["b"] == 0) for lin in zero.layers if isinstance(lin, Linear))
    wide = R.random_relu_net(500, 400, 1, rng=0, bias_std=2.0, dtype=np.float32)
    assert wide[0].params["W"].dtype == np.float32
    assert wide[0].params["W"].std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)  # He
    assert wide[0].params["b"].std() == pytest.approx(2.0, rel=0.2)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"depth": 0}, ValueError, "depth"),
        ({"width": 0}, ValueError, "width"),
        ({"bias_std": -1.0}, ValueError, "bias_std"),
        ({"init": "bogus"}, ValueError, "init"),
        ({"rng": None}, ValueError, "seed"),
    ],
)
def test_random_relu_net_rejects_bad_arguments(kwargs, err, match):
    args = {"d_in": 2, "width": 4, "depth": 2} | kwargs
    with pytest.raises(err, match=match):
        R.random_relu_net(**args)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def test_non_piecewise_linear_layers_are_refused():
    tanh_net = dl.models.mlp([2, 4, 1], "tanh", rng=0)
    for call in (
        lambda: R.count_pieces(tanh_net, [0.0, 0.0], [1.0, 1.0]),
        lambda: R.activation_pattern(tanh_net, np.zeros((2, 2))),
        lambda: R.region_map(tanh_net),
        lambda: R.count_pieces_sampled(tanh_net, [0.0, 0.0], [1.0, 1.0]),
    ):
        with pytest.raises(TypeError, match=r"layer 1 is Activation\('tanh'\).*only piecewise-linear"):
            call()
    maxout = dl.Sequential(Linear(2, 4, rng=0), dl.activations.Maxout(4, 2, rng=0))
    with pytest.raises(TypeError, match="layer 1 is Maxout.*only piecewise-linear"):
        R.breakpoints(maxout, [0.0, 0.0], [1.0, 1.0])
    nested = dl.Sequential(Linear(1, 2, rng=0), dl.Sequential(Activation("relu"), Activation("elu")))
    with pytest.raises(TypeError, match=r"layer 1\.1 is Activation\('elu'"):
        R.count_pieces(nested, 0.0, 1.0)
    with pytest.raises(TypeError, match="Sequential"):
        R.count_pieces("not a net", 0.0, 1.0)


def test_bad_segments_and_arguments():
    net = R.random_relu_net(3, 4, 2, rng=0)
    with pytest.raises(ValueError, match="takes 3 input features.*have 2"):
        R.count_pieces(net, [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="takes 3 input features"):
        R.count_pieces(net, 0.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        R.breakpoints(net, np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        R.breakpoints(net, np.zeros(3), np.array([0.0, np.inf, 0.0]))
    with pytest.raises(TypeError, match="real number"):
        R.breakpoints(net, np.zeros(3), "abc")
    with pytest.raises(ValueError, match="takes 3 input features, got x of shape"):
        R.activation_pattern(net, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="kind must be"):
        R.count_pieces(net, np.zeros(3), np.ones(3), kind="regions")
    with pytest.raises(ValueError, match="tol"):
        R.breakpoints(net, np.zeros(3), np.ones(3), kind="function", tol=-1.0)
    with pytest.raises(ValueError, match="n must be"):
        R.count_pieces_sampled(net, np.zeros(3), np.ones(3), n=2)


# -- hand-built networks of chapter 2 --------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_zigzag_net_has_3_to_the_k_pieces(k):
    net = R.zigzag_net(k)
    assert R.count_pieces(net, 0.0, 1.0, kind="function") == 3**k
    assert net.num_parameters() == 6 + 12 * (k - 1) + 3  # (1, 3) + 3, then (3, 3) + 3 per layer, (3, 1)
    x = np.linspace(0.0, 1.0, 3**k + 1)[:, None]  # the ends of the pieces: values 0 or 1
    y = net(x)[:, 0]
    np.testing.assert_allclose(y, np.arange(3**k + 1) % 2, atol=1e-9)


def test_zigzag_net_is_the_composition_of_z():
    z = R.zigzag_net(1)
    zz = R.zigzag_net(2)
    x = np.random.default_rng(0).uniform(0, 1, (50, 1))
    np.testing.assert_allclose(zz(x), z(z(x)), atol=1e-12)


def test_fold_layers_fold_the_plane():
    fold = dl.Sequential(R.fold_layers(0.7))
    xy = np.random.default_rng(1).normal(size=(200, 2))
    np.testing.assert_allclose(fold(xy), np.abs(xy - 0.7), atol=1e-12)
    assert all(isinstance(l, dl.layers.Linear) for l in fold.layers[::2])


def test_first_layer_kinks():
    net = R.interpolant_net(np.array([-1.0, 0.0, 0.5, 2.0]), np.array([0.0, 1.0, -1.0, 3.0]))
    kinks = np.sort(R.first_layer_kinks(net))
    np.testing.assert_allclose(kinks[np.isfinite(kinks)], [-1.0, 0.0, 0.5])
    with pytest.raises(TypeError, match="one input"):
        R.first_layer_kinks(dl.Sequential(dl.layers.Linear(2, 3, rng=0)))


# ---------------------------------------------------------------------------
# Yarotsky's square and the grid interpolant (the curse of dimensionality)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
def test_square_net_is_the_interpolant_of_x_squared_with_error_4_to_the_minus_m_plus_1(m):
    net = R.square_net(m)
    x = np.linspace(0.0, 1.0, 2 ** (m + 3) + 1)  # contains every knot and every midpoint
    f = net(x[:, None])[:, 0]
    knots = np.linspace(0.0, 1.0, 2**m + 1)
    np.testing.assert_allclose(f, np.interp(x, knots, knots**2), rtol=0, atol=1e-15)
    err = f - x**2
    assert err.min() >= -1e-15
    assert err.max() == pytest.approx(4.0 ** -(m + 1), rel=1e-12)  # at the midpoints
    assert R.count_pieces(net, 0.0, 1.0, kind="function") == 2**m
    hidden = [layer for layer in net.layers if isinstance(layer, dl.layers.Linear)][:-1]
    assert len(hidden) == m and all(layer.params["W"].shape[1] == 3 for layer in hidden)


def test_square_net_float32_weights_are_exact():
    a, b = R.square_net(6, dtype=np.float32), R.square_net(6)
    for k in b.params:
        np.testing.assert_array_equal(a.params[k].astype(np.float64), b.params[k])


def test_grid_interpolant_in_one_dimension_is_np_interp():
    knots = np.linspace(0, 1, 7)
    vals = np.cos(4 * knots)
    x = np.random.default_rng(0).random(200)
    np.testing.assert_allclose(R.grid_interpolant(vals, x[:, None]), np.interp(x, knots, vals), atol=1e-15)


@pytest.mark.parametrize("d", [2, 3])
def test_grid_interpolant_is_exact_on_affine_functions_and_hits_the_grid(d):
    rng = np.random.default_rng(d)
    n = 4
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, n + 1)] * d, indexing="ij"), -1)
    a, c = rng.standard_normal(d), 0.3
    x = rng.random((500, d))
    np.testing.assert_allclose(R.grid_interpolant(grid @ a + c, x), x @ a + c, atol=1e-13)
    vals = rng.standard_normal((n + 1,) * d)
    pts = grid.reshape(-1, d)
    np.testing.assert_allclose(R.grid_interpolant(vals, pts), vals.reshape(-1), atol=1e-13)


def test_grid_interpolant_is_continuous_and_piecewise_linear_along_a_line():
    vals = np.random.default_rng(3).standard_normal((4, 4, 4))
    t = np.linspace(0.0, 1.0, 20001)
    p, q = np.array([0.05, 0.9, 0.3]), np.array([0.95, 0.1, 0.7])
    f = R.grid_interpolant(vals, p + t[:, None] * (q - p))
    assert np.abs(np.diff(f)).max() < 1e-3  # no jumps
    kinks = np.abs(np.diff(f, 2)) > 1e-9  # second differences vanish except at simplex faces
    assert 0 < kinks.sum() < 60


def test_grid_interpolant_error_falls_like_n_to_the_minus_2_in_every_dimension():
    rng = np.random.default_rng(0)
    for d in (1, 2, 3):
        x = rng.random((4000, d))
        errs = []
        for n in (8, 16):
            grid = np.stack(np.meshgrid(*[np.linspace(0, 1, n + 1)] * d, indexing="ij"), -1)
            f = np.sin(3 * grid).prod(-1)
            errs.append(np.abs(R.grid_interpolant(f, x) - np.sin(3 * x).prod(1)).max())
        assert 3.0 < errs[0] / errs[1] < 5.0  # h^2: a quarter per halving of h, i.e. N^(-2/d)


def test_grid_interpolant_bad_input():
    with pytest.raises(ValueError, match=r"shape \(n \+ 1,\) \* d"):
        R.grid_interpolant(np.zeros((3, 4)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"shape \(M, 2\)"):
        R.grid_interpolant(np.zeros((3, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        R.grid_interpolant(np.zeros((3, 3)), np.full((1, 2), 1.5))
