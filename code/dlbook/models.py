"""Small model builders shared by the chapters.

``mlp`` stacks :class:`~dlbook.layers.Linear` layers with an activation
between them; chapter 1 uses it to compare activations at equal size, chapter
3 adds normalisation and dropout to it. ``small_cnn`` is chapter 4's
convolutional network for 8x8 digits (and the image reader of chapter 6's
CNN-LSTM); ``lenet`` is that chapter's classic reference point. Chapter 6
adds the recurrent models: :class:`RecurrentClassifier`
(read the final state or every output), :class:`CharLM` (a character-level
language model that carries its state across batches) and :class:`CNNLSTM`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .activations import Activation
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .core import Module, Sequential, as_generator, check_positive_int, inference_mode
from .layers import BatchNorm1d, BatchNorm2d, Dropout, Embedding, Flatten, LayerNorm, Linear
from .recurrent import recurrent_layer

__all__ = [
    "mlp",
    "conv_bn_relu",
    "small_cnn",
    "lenet",
    "RecurrentClassifier",
    "sequence_classifier",
    "CharLM",
    "CNNLSTM",
]

_NORMS = {"batch": BatchNorm1d, "layer": LayerNorm}


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str = "uniform",
    *,
    rng: np.random.Generator | int,
    dtype=np.float64,
    dropout: float = 0.0,
    norm: str | None = None,
    **act_params,
) -> Sequential:
    """A multilayer perceptron ``Linear -> [norm] -> act -> [dropout] -> … -> Linear``.

    .. math:: h_0 = x, \\quad
              h_\\ell = \\operatorname{drop}(f(\\operatorname{norm}(h_{\\ell-1} W_\\ell + b_\\ell))),
              \\quad \\text{logits} = h_{L-1} W_L + b_L

    ``sizes = (D, H1, ..., K)`` gives ``len(sizes) - 1`` Linear layers and no
    activation after the last. Shapes: ``x (N, D) -> (N, K)``.

    - ``activation`` (with ``act_params``, e.g. ``negative_slope=0.2``) is any
      elementwise entry of :mod:`dlbook.activations`;
    - ``init`` names the weight initialiser (see :func:`dlbook.layers.init_weight`);
    - ``norm``: ``None``, ``"batch"`` (:class:`~dlbook.layers.BatchNorm1d`) or
      ``"layer"`` (:class:`~dlbook.layers.LayerNorm`) between each hidden
      Linear and its activation (Ioffe & Szegedy 2015; Ba et al. 2016). The
      Linear keeps its bias (BatchNorm makes it redundant: its gradient is 0
      in training) so that the weights stay those of the plain network;
    - ``dropout``: probability ``p`` of a :class:`~dlbook.layers.Dropout` after
      each hidden activation (0 adds none; Srivastava et al. 2014).

    All weights are drawn from one Generator in layer order, so the same seed
    gives the same weights for every activation, norm and dropout setting
    (and the same network as before these options existed). The Dropout
    layers get their own streams, spawned from that Generator afterwards
    (``Generator.spawn``), so they never shift the weights. Chapters 1 and 3.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    if norm is not None and norm not in _NORMS:
        raise ValueError(f"norm must be None, 'batch' or 'layer', got {norm!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)):
        raise TypeError(f"dropout must be a probability in [0, 1), got {type(dropout).__name__}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
    gen = as_generator(rng)
    n_hidden = len(sizes) - 2
    linears = [
        Linear(d_in, d_out, rng=gen, init=init, dtype=dtype)
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    drop_gens = gen.spawn(n_hidden) if dropout > 0.0 and n_hidden else []
    layers = []
    for i, linear in enumerate(linears):
        layers.append(linear)
        if i < n_hidden:
            if norm is not None:
                layers.append(_NORMS[norm](sizes[i + 1], dtype=dtype))
            layers.append(Activation(activation, **act_params))
            if dropout > 0.0:
                layers.append(Dropout(dropout, rng=drop_gens[i]))
    return Sequential(layers)


def conv_bn_relu(
    in_channels: int, out_channels: int, *, rng: np.random.Generator | int, dtype=np.float64
) -> list[Module]:
    """``[Conv2d 3x3 (padding 1, no bias, He init), BatchNorm2d, ReLU]``: a size-keeping stage.

    .. math:: y = \\operatorname{ReLU}(\\operatorname{BN}(W * x))

    No bias: the BatchNorm that follows subtracts the mean, which would
    cancel it. Shapes: ``(N, C_in, H, W) -> (N, C_out, H, W)``. Chapter 4.
    """
    return [
        Conv2d(in_channels, out_channels, 3, padding=1, bias=False, init="he", rng=rng, dtype=dtype),
        BatchNorm2d(out_channels, dtype=dtype),
        Activation("relu"),
    ]


def small_cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    widths: Sequence[int] = (16, 16, 32),
    *,
    rng: np.random.Generator | int,
    dtype=np.float64,
) -> Sequential:
    """Chapter 4's CNN for 8x8 images: three conv-BN-ReLU stages, two 2x2 max-pools, a dense head.

    .. code-block:: text

        (N, C, 8, 8) -conv-bn-relu-> (N, w0, 8, 8) -conv-bn-relu-> (N, w1, 8, 8)
        -maxpool-> (N, w1, 4, 4) -conv-bn-relu-> (N, w2, 4, 4) -maxpool-> (N, w2, 2, 2)
        -flatten-> (N, 4 w2) -linear-> (N, num_classes)

    With the default widths it has 8,474 parameters. The weights are drawn
    from one Generator in layer order. Inputs must be 8x8 (or any size
    divisible by 4, with the head sized for 8x8). Chapter 4; chapter 6 reads
    one digit per time step with its trunk.
    """
    w0, w1, w2 = (check_positive_int(w, "width") for w in widths)
    gen = as_generator(rng)
    return Sequential(
        *conv_bn_relu(check_positive_int(in_channels, "in_channels"), w0, rng=gen, dtype=dtype),
        *conv_bn_relu(w0, w1, rng=gen, dtype=dtype),  # (N, w1, 8, 8)
        MaxPool2d(2),  # (N, w1, 4, 4)
        *conv_bn_relu(w1, w2, rng=gen, dtype=dtype),
        MaxPool2d(2),  # (N, w2, 2, 2)
        Flatten(),  # (N, 4 w2)
        Linear(4 * w2, check_positive_int(num_classes, "num_classes"), rng=gen, dtype=dtype),
    )


def lenet(
    image_size: int = 28,
    in_channels: int = 1,
    num_classes: int = 10,
    *,
    activation: str = "tanh",
    pool: str = "avg",
    rng: np.random.Generator | int,
    dtype=np.float64,
) -> Sequential:
    """A LeNet-5-style network: two 5x5 convolutions with 2x2 pooling, then dense layers 120, 84.

    .. code-block:: text

        (N, C, s, s) -conv 5x5 pad 2, 6-> (N, 6, s, s) -pool-> (N, 6, s/2, s/2)
        -conv 5x5, 16-> (N, 16, s/2-4, s/2-4) -pool-> (N, 16, q, q), q = (s/2-4)/2
        -flatten-> (N, 16 q^2) -linear-> 120 -linear-> 84 -linear-> num_classes

    with ``activation`` after every convolution and hidden dense layer. The
    layout follows LeCun et al. (1998): feature maps 6 and 16, 5x5 kernels,
    subsampling by 2, dense layers of 120 and 84 units. It differs in what
    that paper's C3 (a sparse table of input maps per output map), its
    trainable subsampling layers and its RBF output did; padding the first
    convolution by 2 makes a 28x28 input play the role of the paper's
    32x32. ``pool`` is ``"avg"`` (the paper's averaging) or ``"max"``;
    ``image_size`` must be even with ``s/2 - 4`` even and at least 2 (12, 16,
    20, 28, 32, ...). 28x28: 61,706 parameters for 10 classes. The weights
    use PyTorch's default initialisation, drawn from one Generator in layer
    order. Chapter 4.
    """
    s = check_positive_int(image_size, "image_size")
    if s % 2 or (s // 2 - 4) < 2 or (s // 2 - 4) % 2:
        raise ValueError(f"image_size must be even with image_size/2 - 4 even and >= 2, got {s}")
    if pool not in ("avg", "max"):
        raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
    Pool = AvgPool2d if pool == "avg" else MaxPool2d
    q = (s // 2 - 4) // 2
    gen = as_generator(rng)
    return Sequential(
        Conv2d(check_positive_int(in_channels, "in_channels"), 6, 5, padding=2, rng=gen, dtype=dtype),
        Activation(activation),
        Pool(2),  # (N, 6, s/2, s/2)
        Conv2d(6, 16, 5, rng=gen, dtype=dtype),
        Activation(activation),
        Pool(2),  # (N, 16, q, q)
        Flatten(),
        Linear(16 * q * q, 120, rng=gen, dtype=dtype),
        Activation(activation),
        Linear(120, 84, rng=gen, dtype=dtype),
        Activation(activation),
        Linear(84, check_positive_int(num_classes, "num_classes"), rng=gen, dtype=dtype),
    )


# ---------------------------------------------------------------------------
# Recurrent models (chapter 6)
# ---------------------------------------------------------------------------
def _final_h(state):
    return state[0] if isinstance(state, tuple) else state


class RecurrentClassifier(Module):
    """A recurrent layer and a linear read-out: of the final state, or of every step's output.

    .. math:: \\text{read="last"}:\\ z = h_T W + b \\ (N, K); \\qquad
              \\text{read="all"}:\\ z_t = h_t W + b \\ (N, T, K)

    ``kind`` is ``"rnn"``, ``"lstm"`` or ``"gru"``; extra keywords go to the
    layer (e.g. ``forget_bias``). Shapes: ``x (N, T, D)`` float -> logits
    ``(N, K)`` or ``(N, T, K)``; ``backward`` returns ``dx (N, T, D)`` (what
    chapter 6 measures as the gradient reaching step ``t``). With
    ``read="last"`` only ``h_T`` is used, so the per-step outputs get no
    gradient; with ``read="all"`` the final state gets none beyond ``h_T``'s
    role as the last output. Chapter 6.
    """

    def __init__(
        self,
        kind: str,
        in_features: int,
        hidden: int,
        classes: int,
        *,
        read: str = "last",
        rng: np.random.Generator | int,
        dtype=np.float64,
        **rnn_options,
    ) -> None:
        super().__init__()
        if read not in ("last", "all"):
            raise ValueError(f"read must be 'last' (the final state) or 'all' (every output), got {read!r}")
        gen = as_generator(rng)
        self.read = read
        self.rnn = recurrent_layer(kind, in_features, hidden, rng=gen, dtype=dtype, **rnn_options)
        self.head = Linear(hidden, check_positive_int(classes, "classes"), rng=gen, dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        hs, state = self.rnn(x)
        return self.head(_final_h(state) if self.read == "last" else hs)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        d = self.head.backward(dout)
        lstm = self.rnn.cell.STATE_PARTS == 2
        if self.read == "last":
            dxs, _ = self.rnn.backward(None, (d, None) if lstm else d)
        else:
            dxs, _ = self.rnn.backward(d, None)
        return dxs

    def __repr__(self) -> str:
        return f"RecurrentClassifier({self.rnn!r}, {self.head!r}, read={self.read!r})"


def sequence_classifier(
    kind: str,
    vocab: int,
    embed: int,
    hidden: int,
    classes: int,
    *,
    read: str = "last",
    rng: np.random.Generator | int,
    dtype=np.float64,
    **rnn_options,
) -> Sequential:
    """``Sequential(Embedding(vocab, embed), RecurrentClassifier(...))`` for token ids ``(N, T)``.

    ``model[0]`` turns ids into vectors, ``model[1]`` reads them; calling
    ``model[1].backward`` directly gives the gradient at every step's input.
    Chapter 6 (the memory task).
    """
    gen = as_generator(rng)
    return Sequential(
        Embedding(vocab, embed, rng=gen, dtype=dtype),
        RecurrentClassifier(kind, embed, hidden, classes, read=read, rng=gen, dtype=dtype, **rnn_options),
    )


class CharLM(Module):
    """A character-level language model: Embedding -> recurrent layer -> Linear over the vocabulary.

    .. math:: p(x_{t+1} \\mid x_{\\le t}) = \\operatorname{softmax}(h_t W + b)

    ``forward(ids (N, T)) -> logits (N, T, V)``. With ``carry_state=True``
    (truncated backpropagation through time) each forward pass starts from the
    final state of the previous one, as a plain array: the state flows on,
    the gradient stops at the window's edge, because ``backward`` drops the
    gradient of the initial state. :meth:`reset_state` starts afresh (at each
    epoch, before validation). :meth:`sample` generates text. Chapter 6.
    """

    def __init__(
        self,
        vocab: int,
        embed: int,
        hidden: int,
        *,
        kind: str = "lstm",
        carry_state: bool = True,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        gen = as_generator(rng)
        self.embed = Embedding(vocab, embed, rng=gen, dtype=dtype)
        self.rnn = recurrent_layer(kind, embed, hidden, rng=gen, dtype=dtype)
        self.head = Linear(hidden, vocab, rng=gen, dtype=dtype)
        self.carry_state = bool(carry_state)
        self.state = None

    def reset_state(self) -> CharLM:
        """Forget the carried state: the next window starts from zeros."""
        self.state = None
        return self

    def forward(self, ids: np.ndarray) -> np.ndarray:
        state = self.state
        if state is not None and _final_h(state).shape[0] != len(ids):
            state = None  # a batch of another size starts afresh
        hs, final = self.rnn(self.embed(ids), state)
        if self.carry_state:
            self.state = tuple(a.copy() for a in final) if isinstance(final, tuple) else final.copy()
        return self.head(hs)

    def backward(self, dlogits: np.ndarray) -> None:
        dhs = self.head.backward(dlogits)
        dxs, _ = self.rnn.backward(dhs, None)  # the initial state's gradient is dropped: truncation
        return self.embed.backward(dxs)

    def sample(self, prompt: np.ndarray, length: int, *, temperature: float = 1.0, rng) -> np.ndarray:
        """Continue ``prompt`` (1-D ids) by ``length`` tokens drawn from ``softmax(z / temperature)``.

        Runs in inference mode one step at a time through the cell, so the
        carried state is left alone. ``temperature`` near 0 approaches
        greedy choice; 1 samples the model's distribution; above 1 flattens
        it. Returns the new ids ``(length,)``.
        """
        prompt = np.asarray(prompt)
        if prompt.ndim != 1 or prompt.size == 0:
            raise ValueError(f"prompt must be a non-empty 1-D array of ids, got shape {prompt.shape}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        gen = as_generator(rng)
        out = np.empty(check_positive_int(length, "length"), dtype=np.int64)
        with inference_mode():
            _, state = self.rnn(self.embed(prompt[None]))  # read the prompt
            for k in range(len(out)):
                z = self.head(_final_h(state))[0] / temperature  # (V,)
                p = np.exp(z - z.max())
                token = gen.choice(len(p), p=p / p.sum())
                out[k] = token
                x = self.embed(np.array([token]))  # (1, E)
                state = self.rnn.cell(x, state)
        return out

    def __repr__(self) -> str:
        return f"CharLM({self.embed!r}, {self.rnn!r}, {self.head!r}, carry_state={self.carry_state})"


class CNNLSTM(Module):
    """A CNN reads one image per time step, an LSTM reads the sequence of features, a Linear labels each step.

    .. code-block:: text

        (N, T, 1, 8, 8) -reshape-> (N*T, 1, 8, 8) -CNN-> (N*T, F) -reshape-> (N, T, F)
        -LSTM-> (N, T, H) -Linear-> (N, T, K)

    The same convolutional trunk (conv-BN-ReLU, max-pool, conv-BN-ReLU,
    max-pool, flatten: ``F = 4 w1``) is applied to all ``N T`` images as one
    batch, so its weight gradients sum over every step of every sequence.
    Trained end to end through both. Chapter 6 (running sums of digits).
    """

    def __init__(
        self,
        classes: int,
        hidden: int = 64,
        widths: Sequence[int] = (8, 16),
        *,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        gen = as_generator(rng)
        w0, w1 = (check_positive_int(w, "width") for w in widths)
        self.cnn = Sequential(
            *conv_bn_relu(1, w0, rng=gen, dtype=dtype),  # (M, w0, 8, 8)
            MaxPool2d(2),  # (M, w0, 4, 4)
            *conv_bn_relu(w0, w1, rng=gen, dtype=dtype),
            MaxPool2d(2),  # (M, w1, 2, 2)
            Flatten(),  # (M, 4 w1)
        )
        self.lstm = recurrent_layer("lstm", 4 * w1, hidden, rng=gen, dtype=dtype)
        self.head = Linear(hidden, check_positive_int(classes, "classes"), rng=gen, dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 5:
            raise ValueError(f"CNNLSTM expects images (N, T, 1, 8, 8), got shape {x.shape}")
        N, T = x.shape[:2]
        feats = self.cnn(x.reshape((N * T,) + x.shape[2:]))  # (N*T, F): every step's image in one batch
        hs, _ = self.lstm(feats.reshape(N, T, -1))  # (N, T, H)
        self._save(x.shape)
        return self.head(hs)  # (N, T, K)

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        dhs = self.head.backward(dlogits)
        dfeats, _ = self.lstm.backward(dhs, None)  # (N, T, F)
        dx = self.cnn.backward(dfeats.reshape(shape[0] * shape[1], -1))  # (N*T, 1, 8, 8)
        return dx.reshape(shape)
