"""The training loop (dlbook.train): learning, determinism, divergence, callbacks, progress, checks."""

import warnings

import numpy as np
import pytest

import dlbook as dl
from dlbook import optim, train
from dlbook.losses import binary_cross_entropy, mse, softmax_cross_entropy


def _spirals_setup(seed=0, lr=0.01):
    X, y = dl.data.spirals(n=100, classes=3, noise=0.1, rng=0)
    net = dl.models.mlp([2, 64, 64, 3], "relu", rng=seed)
    return X, y, net, optim.Adam(net, lr)


def test_mlp_learns_spirals_to_high_accuracy():
    X, y, net, opt = _spirals_setup()
    h = train.fit(net, softmax_cross_entropy, opt, X, y, epochs=60, batch_size=32, rng=0, progress=False)
    loss, acc = train.evaluate(net, softmax_cross_entropy, X, y)
    assert acc > 0.97
    assert h.epoch_accuracy[-1] > 0.95 and h.epoch_loss[-1] < 0.2 * h.epoch_loss[0]
    assert h.steps == 60 * 10 and h.epochs == 60 and len(h.lr) == h.steps
    assert h.grad_norm == [] and h.val_loss == [] and not h.stopped_early
    assert len(h.epoch_time) == 60 and np.all(np.diff(h.epoch_time) >= 0)
    assert net.training  # left in training mode
    assert loss == pytest.approx(softmax_cross_entropy(net(X), y)[0], rel=1e-12)


def test_moons_with_validation_and_binary_logits():
    X, y = dl.data.moons(150, noise=0.1, rng=1)
    (Xt, yt), (Xv, yv) = dl.data.split(X, y, (0.8, 0.2), rng=0)
    net = dl.models.mlp([2, 32, 1], "tanh", rng=0)
    h = train.fit(
        net, binary_cross_entropy, optim.Adam(net, 0.02), Xt, yt[:, None], epochs=40, batch_size=16,
        rng=0, val=(Xv, yv[:, None]), progress=False,
    )
    assert len(h.val_loss) == len(h.val_accuracy) == 40
    assert h.val_accuracy[-1] > 0.95 and h.epoch_accuracy[-1] > 0.95
    assert h.val_accuracy[-1] == pytest.approx(np.mean((net(Xv)[:, 0] > 0) == yv))
    assert "val_acc" in h.summary()


def test_regression_records_loss_but_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 1))
    t = np.sin(X)
    net = dl.models.mlp([1, 32, 1], "tanh", rng=0)
    h = train.fit(net, mse, optim.Adam(net, 0.02), X, t, epochs=30, batch_size=20, rng=0,
                  val=(X[:50], t[:50]), progress=False)
    assert h.epoch_accuracy == [] and h.val_accuracy == []
    assert h.epoch_loss[-1] < 0.01 and len(h.val_loss) == 30
    loss, acc = train.evaluate(net, mse, X, t, batch_size=64)
    assert acc is None and loss == pytest.approx(mse(net(X), t)[0], rel=1e-12)


def test_same_seed_same_history_and_parameters():
    def run(seed):
        X, y, net, opt = _spirals_setup()
        sched = optim.CosineLR(opt, total_steps=50)
        h = train.fit(net, softmax_cross_entropy, opt, X, y, epochs=5, batch_size=30, rng=seed,
                      val=(X[:60], y[:60]), scheduler=sched, clip_norm=1.0, progress=False)
        return h, net

    h1, n1 = run(3)
    h2, n2 = run(3)
    h3, _ = run(4)
    for name in ("loss", "lr", "grad_norm", "epoch_loss", "epoch_accuracy", "val_loss", "val_accuracy"):
        assert getattr(h1, name) == getattr(h2, name), name
    for k in n1.params:
        np.testing.assert_array_equal(n1.params[k], n2.params[k])
    assert h1.loss != h3.loss  # another seed shuffles differently


def test_batches_are_reshuffled_every_epoch():
    seen = []

    class Spy(dl.Module):
        def forward(self, x):
            seen.append(x[:, 0].copy())
            return x

        def backward(self, dout):
            return dout

    net = dl.Sequential(Spy(), dl.layers.Linear(2, 2, rng=0))
    X = np.stack([np.arange(20.0), np.zeros(20)], axis=1)
    y = np.zeros(20, dtype=np.int64)
    train.fit(net, softmax_cross_entropy, optim.SGD(net, 0.1), X, y, epochs=2, batch_size=5, rng=0,
              progress=False)
    seen = seen[1:]  # the first forward is fit's one-sample check of the output size
    first, second = np.concatenate(seen[:4]), np.concatenate(seen[4:])
    assert sorted(first) == sorted(second) == list(range(20))  # each sample once per epoch
    assert not np.array_equal(first, second)


def test_diverging_run_raises_training_diverged_naming_the_step():
    X, _ = dl.data.moons(100, rng=0)
    t = 3.0 * X[:, :1]
    net = dl.models.mlp([2, 16, 1], "tanh", rng=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(train.TrainingDiverged, match=r"diverged at step \d+ \(epoch \d+/50") as info:
            train.fit(net, mse, optim.SGD(net, 5.0), X, t, epochs=50, batch_size=20, rng=0, progress=False)
    assert caught == []  # a clean error, no RuntimeWarning on the way
    err = info.value
    assert isinstance(err, FloatingPointError) and err.lr == 5.0 and err.step > 1
    msg = str(err)
    assert f"step {err.step} " in msg and f"batch {err.batch}/10" in msg  # 200 samples, batches of 20
    assert err.step == 10 * (err.epoch - 1) + err.batch
    assert "Lower the learning rate (now lr=5)" in msg and "clip gradients (clip_norm=" in msg


def test_non_finite_loss_is_caught_at_its_step():
    calls = []

    def loss_nan_at_3(logits, y):
        calls.append(1)
        loss, d = softmax_cross_entropy(logits, y)
        return (float("nan") if len(calls) == 3 else loss), d

    X, y, net, opt = _spirals_setup()
    with pytest.raises(train.TrainingDiverged, match=r"step 3 \(epoch 1/2, batch 3/10\): the loss is nan"):
        train.fit(net, loss_nan_at_3, opt, X, y, epochs=2, batch_size=30, rng=0, progress=False)


def test_non_finite_validation_loss_stops_the_run():
    X, y, net, opt = _spirals_setup()

    def loss_inf_in_eval(logits, y):
        loss, d = softmax_cross_entropy(logits, y)
        return (float("inf") if not net.training else loss), d

    with pytest.raises(train.TrainingDiverged, match=r"step 10 .*validation loss after the epoch is inf"):
        train.fit(net, loss_inf_in_eval, opt, X, y, epochs=2, batch_size=30, rng=0, val=(X, y),
                  progress=False)


def test_clipping_records_the_norm_and_bounds_the_update():
    X, y, net, _ = _spirals_setup()
    opt = optim.SGD(net, 0.5)
    before = {k: p.copy() for k, p in net.params.items()}
    net.zero_grad()
    net.backward(softmax_cross_entropy(net(X), y)[1])
    full_norm = optim.grad_norm(net)
    h = train.fit(net, softmax_cross_entropy, opt, X, y, epochs=1, batch_size=len(X), rng=0,
                  clip_norm=1e-3, progress=False)
    assert h.grad_norm == [pytest.approx(full_norm, rel=1e-12)]  # one full batch: the norm before clipping
    step = np.sqrt(sum(((net.params[k] - before[k]) ** 2).sum() for k in before))
    assert step == pytest.approx(0.5 * 1e-3, rel=1e-5)


def test_callbacks_are_called_each_epoch_and_can_stop():
    X, y, net, opt = _spirals_setup()
    calls = []

    def record(history, epoch):
        calls.append((epoch, history.epochs, len(history.val_loss)))

    def stop_after_three(history, epoch):
        return epoch == 2

    h = train.fit(net, softmax_cross_entropy, opt, X, y, epochs=10, batch_size=50, rng=0,
                  val=(X, y), callbacks=[record, stop_after_three], progress=False)
    assert calls == [(0, 1, 1), (1, 2, 2), (2, 3, 3)]
    assert h.stopped_early and h.epochs == 3 and h.steps == 3 * 6


def test_early_stopping_restores_the_best_parameters():
    net = dl.models.mlp([2, 3, 2], "relu", rng=0)
    stopper = train.EarlyStopping(net, patience=2)
    h = train.History()
    decisions = []
    for epoch, v in enumerate([1.0, 0.5, 0.6, 0.7, 0.8]):
        for p in net.params.values():
            p.fill(float(epoch))  # the parameters "after" this epoch
        h.val_loss.append(v)
        decisions.append(stopper(h, epoch))
    assert decisions == [False, False, False, True, True]
    assert stopper.best_epoch == 1 and stopper.best_loss == 0.5
    assert all(np.all(p == 1.0) for p in net.params.values())  # epoch 1's parameters are back
    with pytest.raises(ValueError, match="pass val="):
        train.EarlyStopping(net)(train.History(), 0)
    with pytest.raises(ValueError, match="patience"):
        train.EarlyStopping(net, patience=0)


def test_early_stopping_restores_batchnorm_statistics_too():
    """Version 1 restored the parameters only: the running statistics stayed those of the last epoch."""
    X, y = dl.data.spirals(50, rng=0)
    net = dl.models.mlp([2, 8, 3], "relu", rng=0, norm="batch")
    stopper = train.EarlyStopping(net, patience=1)
    h = train.History()
    net(X)  # training mode: the running statistics move
    best = net.state_dict()
    h.val_loss.append(0.5)
    stopper(h, 0)
    net(X * 3 + 1)
    h.val_loss.append(0.9)
    assert stopper(h, 1)
    np.testing.assert_array_equal(net[1].buffers["running_mean"], best["1.running_mean"])
    np.testing.assert_array_equal(net[1].buffers["running_var"], best["1.running_var"])


class TwoInputs(dl.Module):
    """(a, b) -> a W + b V: a model called with two arrays, as a sequence-to-sequence model is."""

    def __init__(self):
        super().__init__()
        self.wa = dl.layers.Linear(2, 3, rng=0)
        self.wb = dl.layers.Linear(1, 3, rng=1)

    def forward(self, a, b):
        return self.wa(a) + self.wb(b)

    def backward(self, dout):
        return self.wa.backward(dout), self.wb.backward(dout)


def test_fit_and_evaluate_over_a_tuple_of_arrays():
    X, y = dl.data.spirals(100, rng=0)
    a, b = X, np.linalg.norm(X, axis=1, keepdims=True)
    net = TwoInputs()
    opt = optim.Adam(net, 0.05)
    h = train.fit(net, softmax_cross_entropy, opt, (a, b, y), epochs=20, batch_size=32, rng=0,
                  val=(a, b, y), progress=False)
    loss, acc = train.evaluate(net, softmax_cross_entropy, (a, b, y))
    assert h.val_loss[-1] == pytest.approx(loss)
    assert acc == h.val_accuracy[-1] and acc > 0.5
    assert all(not m._tape for m in net.modules())  # evaluation keeps nothing


def test_the_two_array_form_equals_the_tuple_form():
    X, y = dl.data.spirals(60, rng=1)
    runs = []
    for data in [(X, y), ((X, y), None)]:
        net = dl.models.mlp([2, 8, 3], rng=0)
        h = train.fit(net, softmax_cross_entropy, optim.SGD(net, 0.1), *data, epochs=2, batch_size=16,
                      rng=0, progress=False)
        runs.append((h.loss, net.params["0.W"].copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_sequence_accuracy_skips_padding():
    logits = np.zeros((2, 3, 4))
    logits[..., 1] = 1.0  # predicts class 1 everywhere
    y = np.array([[1, 1, -100], [2, 1, -100]])
    assert train._n_correct(logits, y) == (3, 4)


def test_train_step_is_one_step_of_fit():
    X, y = dl.data.spirals(30, rng=2)
    a, b = dl.models.mlp([2, 5, 3], rng=0), dl.models.mlp([2, 5, 3], rng=0)
    r = train.train_step(a, softmax_cross_entropy, optim.SGD(a, 0.1), X, y)
    h = train.fit(b, softmax_cross_entropy, optim.SGD(b, 0.1), X, y, epochs=1, batch_size=len(X),
                  rng=0, progress=False)
    assert r.loss == pytest.approx(h.loss[0]) and r.output.shape == (len(X), 3)
    np.testing.assert_allclose(a.params["0.W"], b.params["0.W"])
    with pytest.raises(train.TrainingDiverged, match="at step 1: the loss is inf"):
        train.train_step(a, lambda z, t: (np.inf, z), optim.SGD(a, 0.1), X, y)
    with pytest.raises(TypeError, match="at least two arrays"):
        train.train_step(a, softmax_cross_entropy, optim.SGD(a, 0.1), X)


def test_scheduler_rates_are_recorded_per_step():
    X, y, net, opt = _spirals_setup(lr=0.02)
    sched = optim.StepLR(opt, step_size=5, gamma=0.5)
    h = train.fit(net, softmax_cross_entropy, opt, X, y, epochs=3, batch_size=60, rng=0,
                  scheduler=sched, progress=False)
    np.testing.assert_allclose(h.lr, [0.02] * 5 + [0.01] * 5 + [0.005] * 5)
    np.testing.assert_array_equal(h.lr, sched.lrs(15))
    assert opt.lr == pytest.approx(0.0025)


def test_validation_runs_in_eval_mode():
    modes = []

    class Probe(dl.Module):
        def forward(self, x):
            modes.append(self.training)
            return x

        def backward(self, dout):
            return dout

    net = dl.Sequential(dl.layers.Linear(2, 3, rng=0), Probe())
    X, y = dl.data.spirals(n=10, classes=3, rng=0)
    train.fit(net, softmax_cross_entropy, optim.SGD(net, 0.1), X, y, epochs=2, batch_size=10, rng=0,
              val=(X, y), progress=False)
    # fit's one-sample check (eval), then per epoch: 3 training steps, 3 validation batches
    assert modes == [False] + ([True] * 3 + [False] * 3) * 2
    net.eval()
    train.evaluate(net, softmax_cross_entropy, X, y)
    assert not net.training  # evaluate restores the mode it found


def test_progress_false_prints_nothing(capsys):
    X, y, net, opt = _spirals_setup()
    train.fit(net, softmax_cross_entropy, opt, X, y, epochs=2, batch_size=50, rng=0, progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_bar_shows_running_loss_unless_static(capsys, monkeypatch):
    X, y, net, opt = _spirals_setup()
    monkeypatch.delenv("DLBOOK_STATIC", raising=False)
    train.fit(net, softmax_cross_entropy, opt, X, y, epochs=2, batch_size=50, rng=0)
    err = capsys.readouterr().err
    assert "12/12" in err and "loss=" in err
    monkeypatch.setenv("DLBOOK_STATIC", "1")  # the book build: no bar unless asked for
    train.fit(net, softmax_cross_entropy, opt, X, y, epochs=1, batch_size=50, rng=0)
    assert capsys.readouterr() == ("", "")
    train.fit(net, softmax_cross_entropy, opt, X, y, epochs=1, batch_size=50, rng=0, progress=True)
    assert "6/6" in capsys.readouterr().err
    monkeypatch.setenv("DLBOOK_STATIC", "0")
    train.fit(net, softmax_cross_entropy, opt, X, y, epochs=1, batch_size=50, rng=0)
    assert "6/6" in capsys.readouterr().err


def test_bad_inputs_raise_clear_errors():
    X, y, net, opt = _spirals_setup()
    kw = {"epochs": 1, "batch_size": 10, "rng": 0, "progress": False}
    with pytest.raises(ValueError, match=r"same number of rows, got shapes \(300, 2\), \(299,\)"):
        train.fit(net, softmax_cross_entropy, opt, X, y[:-1], **kw)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] for a model with 3 outputs"):
        train.fit(net, softmax_cross_entropy, opt, X, y + 1, **kw)
    with pytest.raises(ValueError, match=r"expects 2 input features, but X has shape \(300, 5\)"):
        train.fit(net, softmax_cross_entropy, opt, np.zeros((300, 5)), y, **kw)
    with pytest.raises(ValueError, match="val: the arrays must have the same number of rows"):
        train.fit(net, softmax_cross_entropy, opt, X, y, val=(X, y[:5]), **kw)
    with pytest.raises(ValueError, match="different model"):
        train.fit(net, softmax_cross_entropy, optim.SGD(dl.models.mlp([2, 3], rng=0), 0.1), X, y, **kw)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.fit(net, softmax_cross_entropy, opt, X, y, **{**kw, "epochs": 0})
    with pytest.raises(ValueError, match="clip_norm must be a positive number"):
        train.fit(net, softmax_cross_entropy, opt, X, y, clip_norm=-1.0, **kw)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        train.fit(net, softmax_cross_entropy, opt, X, y, **{**kw, "rng": None})
    with pytest.raises(TypeError, match="progress must be None, True or False"):
        train.fit(net, softmax_cross_entropy, opt, X, y, **{**kw, "progress": "yes"})
    with pytest.raises(ValueError, match="schedule"):
        train.fit(net, softmax_cross_entropy, opt, X, y, scheduler=optim.StepLR(optim.SGD(net, 1.0), 2), **kw)


def _train_one(seed):
    X, y = dl.data.spirals(40, rng=0)
    net = dl.models.mlp([2, 6, 3], rng=seed)
    h = train.fit(net, softmax_cross_entropy, optim.SGD(net, 0.1), X, y, epochs=2, batch_size=20, rng=seed)
    return net.state_dict(), h.loss


def test_parallel_map_equals_the_serial_loop():
    seeds = [0, 1, 2]
    parallel = train.parallel_map(_train_one, seeds, processes=2)
    serial = train.parallel_map(_train_one, seeds, processes=1)
    assert [r[1] for r in parallel] == [r[1] for r in serial]
    assert parallel[0][1] != parallel[1][1]  # different seeds, different runs
    for (a, _), (b, _) in zip(parallel, serial, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError, match="processes"):
        train.parallel_map(_train_one, seeds, processes=0)


# -- truncated backpropagation through time (fit_stream, evaluate_stream) --------------------------

_TEXT = "the quick brown fox jumps over the lazy dog. " * 4


def _char_setup(seed=0, carry_state=True):
    vocab = dl.data.CharVocab(_TEXT)
    ids = vocab.encode(_TEXT)
    model = dl.models.CharLM(len(vocab), 6, 12, kind="lstm", carry_state=carry_state, rng=seed)
    return vocab, ids, model


def test_fit_stream_learns_a_short_string():
    """A tiny CharLM on a repeated sentence: the loss per token falls far below ln V."""
    vocab, ids, model = _char_setup()
    val = vocab.encode("the lazy dog jumps over the quick brown fox. ")
    h = train.fit_stream(model, softmax_cross_entropy, optim.Adam(model, 0.03), ids, epochs=12,
                         batch_size=2, seq_len=10, val_ids=val, clip_norm=5.0, progress=False)
    windows = len(list(dl.data.stream_batches(ids, 2, 10)))
    assert h.steps == 12 * windows and len(h.lr) == h.steps and len(h.grad_norm) == h.steps
    assert len(h.epoch_loss) == len(h.val_loss) == len(h.epoch_time) == 12
    assert h.epoch_loss[0] > 0.8 * np.log(len(vocab))  # starts near chance
    assert h.epoch_loss[-1] < 0.3 * h.epoch_loss[0]
    assert h.val_loss[-1] < h.val_loss[0]
    assert model.state is None and model.training  # reset and in training mode afterwards


def test_fit_stream_is_train_step_over_the_windows_in_order():
    """One epoch of fit_stream equals the manual loop: reset, then train_step on each window."""
    _, ids, model = _char_setup(seed=1)
    _, _, manual = _char_setup(seed=2)
    manual.load_state_dict(model.state_dict())
    h = train.fit_stream(model, softmax_cross_entropy, optim.SGD(model, 0.5), ids, epochs=1,
                         batch_size=3, seq_len=8, progress=False)
    opt = optim.SGD(manual, 0.5)
    manual.reset_state()
    losses = [train.train_step(manual, softmax_cross_entropy, opt, x, y).loss
              for x, y in dl.data.stream_batches(ids, 3, 8)]
    assert h.loss == losses
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, manual.params[k], err_msg=k)
    sizes = [y.size for _, y in dl.data.stream_batches(ids, 3, 8)]
    assert h.epoch_loss[0] == pytest.approx(np.dot(losses, sizes) / sum(sizes), rel=1e-12)


def test_fit_stream_does_not_depend_on_a_leftover_state():
    """Each epoch starts from zeros: a state left by an earlier call changes nothing."""
    _, ids, a = _char_setup(seed=3)
    _, _, b = _char_setup(seed=3)
    b(ids[None, :20])  # leaves a carried state (batch of 1) and a tape entry behind
    b(np.stack([ids[:20], ids[20:40]]))  # and one of the training batch size
    kw = {"epochs": 2, "batch_size": 2, "seq_len": 10, "progress": False}
    ha = train.fit_stream(a, softmax_cross_entropy, optim.Adam(a, 0.01), ids, **kw)
    hb = train.fit_stream(b, softmax_cross_entropy, optim.Adam(b, 0.01), ids, **kw)
    assert ha.loss == hb.loss


def test_evaluate_stream_equals_one_pass_over_the_whole_rows():
    """Carrying the state across windows gives the mean loss of one forward pass over each full row."""
    vocab, ids, model = _char_setup(seed=4)
    whole = dl.models.CharLM(len(vocab), 6, 12, kind="lstm", carry_state=False, rng=5)
    whole.load_state_dict(model.state_dict())
    B, L = 3, 7
    R = (len(ids) - 1) // B
    expected, _ = softmax_cross_entropy(whole(ids[: B * R].reshape(B, R)), ids[1 : B * R + 1].reshape(B, R))
    model.train()
    got = train.evaluate_stream(model, softmax_cross_entropy, ids, batch_size=B, seq_len=L)
    assert got == pytest.approx(float(expected), rel=1e-12)
    assert model.state is None and model.training and all(not m._tape for m in model.modules())
    # without the carried state every window would start from zeros: a different number
    fresh = dl.models.CharLM(len(vocab), 6, 12, kind="lstm", carry_state=False, rng=6)
    fresh.load_state_dict(model.state_dict())
    assert train.evaluate_stream(fresh, softmax_cross_entropy, ids, batch_size=B, seq_len=L) != pytest.approx(
        got, rel=1e-6
    )


def test_fit_stream_checks_its_model_and_arguments():
    _, ids, model = _char_setup()
    net = dl.models.mlp([2, 3], rng=0)
    with pytest.raises(TypeError, match="has no reset_state"):
        train.fit_stream(net, softmax_cross_entropy, optim.SGD(net, 0.1), ids, epochs=1, batch_size=2,
                         seq_len=5, progress=False)
    with pytest.raises(TypeError, match="has no reset_state"):
        train.evaluate_stream(net, softmax_cross_entropy, ids, batch_size=2, seq_len=5)
    opt = optim.SGD(model, 0.1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.fit_stream(model, softmax_cross_entropy, opt, ids, epochs=0, batch_size=2, seq_len=5)
    with pytest.raises(ValueError, match="1-D integer array"):
        train.fit_stream(model, softmax_cross_entropy, opt, ids.astype(float), epochs=1, batch_size=2,
                         seq_len=5)
    with pytest.raises(train.TrainingDiverged, match=r"step 2: .*\(epoch 1, window 2\)"):  # step 1 overshoots
        train.fit_stream(model, softmax_cross_entropy, optim.SGD(model, 1e300), ids, epochs=1,
                         batch_size=2, seq_len=5, progress=False)
