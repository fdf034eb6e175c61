"""English number words and Chinese numerals: the translation task of chapters 7-9.

A source sentence is the English reading of an integer, a target sentence its
Chinese numeral: ``"three hundred and twenty-one thousand four hundred and
five"`` -> ``"三十二万一千四百零五"`` (321405). The task is small, closed and
exact (every test answer can be checked), yet it has what makes translation
hard: the two languages group digits differently (by 1,000 in English, by
10,000 in Chinese), so the output is a reordering, not a word-for-word copy,
and long numbers test whether a model generalises beyond the lengths it saw.

What the module holds:

- :func:`english` and :func:`chinese`: the two readings of ``0 <= n < 10**12``,
  written here (no run-time dependency) and tested to equal
  ``num2words(n, lang="en")`` with its commas removed and
  ``cn2an.an2cn(n)`` on every integer up to 20,000 and on random ones.
- :func:`tokens_en` / :func:`detokenize_en` (words, the hyphen a token of its
  own) and :func:`tokens_zh` / :func:`detokenize_zh` (one token per character).
- :class:`Vocab`: tokens <-> ids with the specials ``<pad>`` = 0, ``<bos>`` = 1,
  ``<eos>`` = 2, ``<unk>`` = 3; :func:`pad`: ragged id sequences -> a padded
  ``(N, T)`` array and its mask.
- :func:`number_task`: seeded, disjoint train/validation/test sets of numbers
  (optionally with longer test inputs than training ones) and their batches
  for an encoder-decoder (:class:`NumberTask`).

References
----------
- Sutskever, Vinyals & Le (2014). Sequence to Sequence Learning with Neural
  Networks (source -> target with ``<bos>``/``<eos>``, teacher forcing).
- Bahdanau, Cho & Bengio (2015). Neural Machine Translation by Jointly
  Learning to Align and Translate (padding masks for attention).
- Vaswani et al. (2017). Attention Is All You Need.
- Ogawa et al., ``num2words`` (English cardinals, the reference for
  :func:`english`); Ailln, ``cn2an`` (the reference for :func:`chinese`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .core import as_generator, check_positive_int

__all__ = [
    "MAX_NUMBER",
    "english",
    "chinese",
    "tokens_en",
    "detokenize_en",
    "tokens_zh",
    "detokenize_zh",
    "Vocab",
    "pad",
    "Split",
    "NumberTask",
    "number_task",
]

#: The exclusive upper bound of :func:`english` and :func:`chinese`: ``10**12``.
MAX_NUMBER = 10**12


def _check_number(n, who: str) -> int:
    """``n`` as an ``int`` if it is an integer in ``[0, 10**12)``, else ``TypeError`` / ``ValueError``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{who}: n must be an integer in [0, 10**12), got {type(n).__name__} {n!r}")
    n = int(n)
    if not 0 <= n < MAX_NUMBER:
        raise ValueError(f"{who}: n must lie in [0, 10**12), got {n}")
    return n


# ---------------------------------------------------------------------------
# English words
# ---------------------------------------------------------------------------
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def _english_below_100(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]}-{_ONES[ones]}"


def _english_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if hundreds == 0:
        return _english_below_100(rest)
    head = f"{_ONES[hundreds]} hundred"
    return head if rest == 0 else f"{head} and {_english_below_100(rest)}"


def english(n: int) -> str:
    """The English words of ``0 <= n < 10**12``, in the British convention with "and".

    The number is read in groups of three digits, each followed by its scale
    word (``thousand``, ``million``, ``billion``; short scale, 10**9 is a
    billion); zero groups are skipped. Rules:

    - lower case, no commas; tens and units joined by a hyphen (``twenty-one``);
    - ``and`` after ``hundred`` when a non-zero remainder follows
      (``one hundred and five``);
    - ``and`` before the last group when that group is below 100 and a higher
      group is present (``one thousand and five``, ``two million and forty``),
      but not when it is 100 or more (``one thousand one hundred``).

    This is exactly ``num2words(n, lang="en")`` with its commas removed
    (num2words writes ``"one thousand, one hundred"``; the tests compare on
    every integer up to 20,000 and on random ones up to 10**12). Example:
    ``english(321405) == "three hundred and twenty-one thousand four hundred
    and five"``. ``TypeError`` for a non-integer (``bool`` and ``float``
    included), ``ValueError`` outside ``[0, 10**12)``. Chapters 7-9.
    """
    n = _check_number(n, "english")
    if n == 0:
        return "zero"
    words = []
    rest = n
    for scale, name in _SCALES:
        group, rest = divmod(rest, scale)
        if group:
            words.append(f"{_english_below_1000(group)} {name}")
    if rest:
        if n >= 1000 and rest < 100:
            words.append("and")  # "one thousand and five"
        words.append(_english_below_1000(rest))
    return " ".join(words)


# ---------------------------------------------------------------------------
# Chinese numerals
# ---------------------------------------------------------------------------
_DIGITS_ZH = "零一二三四五六七八九"
_UNITS_ZH = ("千", "百", "十", "")  # of the digits of a 4-digit group, left to right
_GROUPS_ZH = ((10**8, "亿"), (10**4, "万"), (1, ""))


def _chinese_group(n: int) -> str:
    """A group ``1 <= n <= 9999``: digit + unit, one 零 for each run of inner zeros, none at the end."""
    out = []
    zero_pending = False
    for digit, unit in zip(f"{n:04d}", _UNITS_ZH, strict=True):
        if digit == "0":
            zero_pending = bool(out)  # only zeros after a non-zero digit are read
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(_DIGITS_ZH[int(digit)] + unit)
    return "".join(out)


def chinese(n: int) -> str:
    """The Chinese numeral (simplified, lower-case digits) of ``0 <= n < 10**12``.

    Digits are grouped by 10**4: ``n = a * 10**8 + b * 10**4 + c`` is read
    ``a`` 亿 ``b`` 万 ``c``, each group with the units 千, 百, 十; zero groups
    are skipped. The conventions, those of ``cn2an.an2cn(n)`` (its default
    "low" mode), which the tests check on every integer up to 20,000 and on
    random ones up to 10**12:

    - 二, never 两 (二百, 二千, 二万);
    - a leading 一十 is read 十: 十五 (15), 十万 (100000), 十亿; everywhere
      else 一十 stays: 一百一十五 (115), 一万零一十 (10010);
    - inside a group one 零 stands for a run of zeros between non-zero digits
      (一千零五 for 1005, 一千零一十 for 1010); trailing zeros are not read
      (一千一百 for 1100);
    - a group after a higher one gets a leading 零 when it is below 1000
      (一万零一 for 10001, 十万零一百 for 100100, 一亿零一 for 100000001), one
      零 even across a skipped zero group. A group of 1000 or more gets none,
      even after a skipped zero group: cn2an writes 一亿一千 for 100001000
      (many style guides write 一亿零一千); this module follows cn2an.

    Example: ``chinese(321405) == "三十二万一千四百零五"``; ``chinese(0) == "零"``.
    ``TypeError`` for a non-integer (``bool`` and ``float`` included),
    ``ValueError`` outside ``[0, 10**12)``. Chapters 7-9.
    """
    n = _check_number(n, "chinese")
    if n == 0:
        return "零"
    out = []
    rest = n
    for scale, name in _GROUPS_ZH:
        group, rest = divmod(rest, scale)
        if group:
            if out and group < 1000:
                out.append("零")  # a zero digit (or group) stands between this group and the last
            out.append(_chinese_group(group) + name)
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text  # 十五, 十万, but 一百一十五


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------
_EN_TOKEN = re.compile(r"[^\s-]+|-")


def _check_text(text, who: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{who}: text must be a str, got {type(text).__name__}")
    return text


def _check_tokens(tokens, who: str) -> list[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(f"{who}: tokens must be a list of str, got {type(tokens).__name__}")
    for tok in tokens:
        if not isinstance(tok, str):
            raise TypeError(f"{who}: every token must be a str, got {type(tok).__name__} {tok!r}")
    return list(tokens)


def tokens_en(text: str) -> list[str]:
    """English words as tokens: split on whitespace, the hyphen a token of its own.

    ``tokens_en("twenty-one thousand") == ["twenty", "-", "one", "thousand"]``.
    :func:`detokenize_en` inverts it on canonical text (single spaces, as
    :func:`english` writes). Chapters 7-9.
    """
    return _EN_TOKEN.findall(_check_text(text, "tokens_en"))


def detokenize_en(tokens: Sequence[str]) -> str:
    """Join English tokens with single spaces, and the hyphen with none: inverse of :func:`tokens_en`."""
    tokens = _check_tokens(tokens, "detokenize_en")
    out = []
    for i, tok in enumerate(tokens):
        if i > 0 and tok != "-" and tokens[i - 1] != "-":
            out.append(" ")
        out.append(tok)
    return "".join(out)


def tokens_zh(text: str) -> list[str]:
    """A Chinese numeral as tokens, one per character: ``"十五" -> ["十", "五"]``. Chapters 7-9."""
    return list(_check_text(text, "tokens_zh"))


def detokenize_zh(tokens: Sequence[str]) -> str:
    """Concatenate Chinese tokens: inverse of :func:`tokens_zh`."""
    return "".join(_check_tokens(tokens, "detokenize_zh"))


# ---------------------------------------------------------------------------
# Vocabulary and padding
# ---------------------------------------------------------------------------
class Vocab:
    """Tokens <-> integer ids, with four special tokens first.

    ``Vocab(token_lists)`` takes an iterable of token lists (e.g. the
    tokenised sentences). Ids: ``<pad>`` = 0, ``<bos>`` = 1 (begin of
    sequence), ``<eos>`` = 2 (end), ``<unk>`` = 3 (unknown), then the distinct
    tokens sorted, ``4 .. V-1``. ``itos`` is the list id -> token, ``stoi``
    the dict token -> id, ``len(vocab)`` is ``V``.

    ``encode(tokens, bos=False, eos=False)`` gives an int64 array ``(L,)``
    (``L = len(tokens) + bos + eos``); a token not in the vocabulary becomes
    ``<unk>`` and is counted in ``unknown_count`` (a running total since the
    vocabulary was made; no exception, no warning). ``decode(ids)`` gives
    the tokens up to the first ``<eos>``, dropping ``<pad>`` and ``<bos>``
    (a model's raw output decodes to the sentence it means). Chapters 7-9.
    """

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, token_lists: Iterable[Sequence[str]]) -> None:
        if isinstance(token_lists, str) or not isinstance(token_lists, Iterable):
            raise TypeError(f"Vocab needs an iterable of token lists, got {type(token_lists).__name__}")
        words: set[str] = set()
        for i, tokens in enumerate(token_lists):
            if isinstance(tokens, str):
                raise TypeError(
                    f"Vocab needs an iterable of token lists, but item {i} is the str {tokens!r}; "
                    "wrap a single sentence in a list"
                )
            words.update(_check_tokens(tokens, f"Vocab (item {i})"))
        self.itos: list[str] = list(self.SPECIALS) + sorted(words - set(self.SPECIALS))
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(self.itos)}
        self.unknown_count = 0

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = False) -> np.ndarray:
        """Ids ``(L,)`` int64: optional ``<bos>``, the tokens (unknown -> ``<unk>``), optional ``<eos>``."""
        tokens = _check_tokens(tokens, "Vocab.encode")
        ids = [self.stoi.get(tok, self.UNK) for tok in tokens]
        self.unknown_count += sum(tok not in self.stoi for tok in tokens)
        ids = [self.BOS] * bool(bos) + ids + [self.EOS] * bool(eos)
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids) -> list[str]:
        """Tokens of a 1-D id sequence, stopping at the first ``<eos>``, without ``<pad>`` and ``<bos>``."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return []
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"Vocab.decode: ids must be integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"Vocab.decode: ids must be 1-D (one sequence), got shape {ids.shape}")
        if ids.min() < 0 or ids.max() >= len(self):
            raise ValueError(
                f"Vocab.decode: ids must lie in [0, {len(self) - 1}], got [{ids.min()}, {ids.max()}]"
            )
        out = []
        for i in ids.tolist():
            if i == self.EOS:
                break
            if i not in (self.PAD, self.BOS):
                out.append(self.itos[i])
        return out

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: 4 specials + {len(self) - 4})"


def pad(seqs: Sequence, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged 1-D id sequences into ``(N, T)``, padding with ``pad_id``, and their mask.

    ``T`` is the longest length. Returns ``ids (N, T)`` int64 and ``mask (N,
    T)`` bool, True where ``ids`` holds a real token (the convention of
    :func:`dlbook.numerics` masked softmax: True = attend). An empty list or
    an empty sequence raises ``ValueError`` (a sequence needs at least one
    token; a decoder's always has ``<bos>`` or ``<eos>``). Chapters 7-9.
    """
    if isinstance(pad_id, bool) or not isinstance(pad_id, (int, np.integer)):
        raise TypeError(f"pad: pad_id must be an integer, got {type(pad_id).__name__}")
    if isinstance(seqs, np.ndarray):
        seqs = list(seqs)
    if isinstance(seqs, str) or not isinstance(seqs, Sequence):
        raise TypeError(f"pad: seqs must be a list of 1-D integer sequences, got {type(seqs).__name__}")
    if len(seqs) == 0:
        raise ValueError("pad: seqs is empty; expected at least one sequence")
    arrays = []
    for i, seq in enumerate(seqs):
        a = np.asarray(seq)
        if a.ndim != 1:
            raise ValueError(f"pad: sequence {i} must be 1-D, got shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"pad: sequence {i} is empty; expected at least one token")
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"pad: sequence {i} must hold integer ids, got dtype {a.dtype}")
        arrays.append(a)
    lengths = np.array([len(a) for a in arrays])
    ids = np.full((len(arrays), lengths.max()), pad_id, dtype=np.int64)  # (N, T)
    mask = np.arange(lengths.max()) < lengths[:, None]  # (1, T) < (N, 1) -> (N, T)
    for row, a in zip(ids, arrays, strict=True):
        row[: len(a)] = a
    return ids, mask


# ---------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------
class Split(NamedTuple):
    """One part of a :class:`NumberTask`: ``(numbers (M,) int64, src, tgt)``, src/tgt lists of token lists."""

    numbers: np.ndarray
    src: list[list[str]]
    tgt: list[list[str]]


def _source_words(high: int) -> list[list[str]]:
    """Token lists that together hold every English token of the numbers ``0 .. high-1``.

    Every word of ``english(n)`` is a scale word or a word of a group below
    1000, and each group ``g < 1000`` is itself a number below ``high`` when
    ``n >= 1000`` is; so the numbers below ``min(high, 1000)`` and the scale
    words of 10**3, 10**6, 10**9 (when below ``high``) cover all.
    """
    lists = [tokens_en(english(n)) for n in range(min(high, 1000))]
    lists.append([name for scale, name in _SCALES if scale < high])
    return lists


def _target_chars(high: int) -> list[list[str]]:
    """Token lists with every character of the Chinese numerals below ``high``: same argument, by 10**4."""
    lists = [tokens_zh(chinese(n)) for n in range(min(high, 10**4))]
    lists.append([name for scale, name in _GROUPS_ZH if 1 < scale < high])
    return lists


def _log_uniform(gen: np.random.Generator, high: int, size: int) -> np.ndarray:
    """``size`` integers in ``[0, high)``: a digit count uniform in ``1..D``, then a number with that many."""
    max_digits = len(str(high - 1))
    digits = gen.integers(1, max_digits + 1, size=size)
    low = np.where(digits == 1, 0, 10 ** (digits - 1))
    top = np.minimum(10**digits, high)
    return gen.integers(low, top, dtype=np.int64)


def _distinct_log_uniform(gen: np.random.Generator, high: int, size: int) -> np.ndarray:
    """``size`` distinct integers in ``[0, high)``, as evenly spread over digit counts as the counts allow.

    Each number draws its digit count uniformly; a count that asks for more
    numbers than have that many digits (only 10 have one digit) passes the
    surplus on to the counts with room, uniformly. Then each digit count
    draws its numbers without replacement. Returned in random order.
    """
    max_digits = len(str(high - 1))
    low = np.array([0] + [10 ** (d - 1) for d in range(2, max_digits + 1)], dtype=np.int64)
    top = np.minimum(np.array([10**d for d in range(1, max_digits + 1)], dtype=np.int64), high)
    room = top - low
    counts = gen.multinomial(size, np.full(max_digits, 1.0 / max_digits))
    while np.any(counts > room):
        surplus = int(np.sum(np.maximum(counts - room, 0)))
        counts = np.minimum(counts, room)
        open_ = counts < room
        counts[open_] += gen.multinomial(surplus, np.full(open_.sum(), 1.0 / open_.sum()))
    parts = [lo + gen.choice(r, c, replace=False) for lo, r, c in zip(low, room, counts, strict=True) if c]
    return gen.permutation(np.concatenate(parts).astype(np.int64))


def _split_by_length(gen, high: int, short: int, long: int, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct log-uniform numbers: ``short`` with at most ``max_len`` source tokens, ``long`` with more."""
    wanted = {True: short, False: long}
    found: dict[bool, list[int]] = {True: [], False: []}
    seen: set[int] = set()
    batch = max(1024, 2 * (short + long))
    idle = 0
    while len(found[True]) < short or len(found[False]) < long:
        progress = False
        for x in _log_uniform(gen, high, batch).tolist():
            if x in seen:
                continue
            seen.add(x)
            is_short = len(tokens_en(english(x))) <= max_len
            if len(found[is_short]) < wanted[is_short]:
                found[is_short].append(x)
                progress = True
        idle = 0 if progress else idle + 1
        if idle >= 20:  # 20 batches without a new usable number: the pool is (nearly) exhausted
            raise ValueError(
                f"number_task: could not find {short} numbers below {high} with at most {max_len} "
                f"source tokens and {long} with more (found {len(found[True])} and {len(found[False])}); "
                "ask for fewer numbers or choose another length_split"
            )
    return np.array(found[True], dtype=np.int64), np.array(found[False], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class NumberTask:
    """English number words -> Chinese numerals: data splits, vocabularies and batches.

    Made by :func:`number_task`. Fields: ``train``, ``val``, ``test``, each a
    :class:`Split` ``(numbers (M,) int64, src, tgt)`` with ``src[i] =
    tokens_en(english(numbers[i]))`` and ``tgt[i] = tokens_zh(chinese(numbers[i]))``;
    ``src_vocab`` and ``tgt_vocab`` (:class:`Vocab`, closed: every token of
    every number below ``high``); ``high`` and ``length_split`` as given.

    ``batch(split, idx)`` returns, for the samples ``idx`` of ``split``
    (``"train"``, ``"val"`` or ``"test"``):

    - ``src_ids (B, S)`` int64 and ``src_mask (B, S)`` bool: the source tokens,
      padded with ``<pad>`` = 0 (no ``<bos>``/``<eos>`` on the source);
    - ``tgt_in (B, T)`` = ``<bos>`` + target (the decoder's input under teacher
      forcing), ``tgt_out (B, T)`` = target + ``<eos>`` (what it must predict),
      both padded with 0; ``tgt_mask (B, T)`` bool, True at real positions of
      both (they have the same length). Chapters 7-9.
    """

    train: Split
    val: Split
    test: Split
    src_vocab: Vocab
    tgt_vocab: Vocab
    high: int
    length_split: int | None = None

    def split(self, name: str) -> Split:
        """The :class:`Split` called ``name``: ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)

    def batch(self, split: str, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(src_ids, src_mask, tgt_in, tgt_out, tgt_mask)`` for the samples ``idx`` of ``split``.

        ``idx``: a 1-D sequence of integer indices, one integer, or a slice.
        """
        part = self.split(split)
        m = len(part.numbers)
        if isinstance(idx, slice):
            idx = np.arange(m)[idx]
        idx = np.asarray(idx)
        if idx.ndim == 0:
            idx = idx[None]
        if idx.size == 0:
            raise ValueError(f"batch: idx selects no samples of {split!r}; expected at least one index")
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"batch: idx must hold integers, got dtype {idx.dtype}")
        if idx.ndim != 1 or idx.min() < -m or idx.max() >= m:
            raise ValueError(
                f"batch: idx must be 1-D indices into the {m} samples of {split!r}, "
                f"got shape {idx.shape} with range [{idx.min()}, {idx.max()}]"
            )
        src_ids, src_mask = pad([self.src_vocab.encode(part.src[i]) for i in idx.tolist()])
        tgt_in, tgt_mask = pad([self.tgt_vocab.encode(part.tgt[i], bos=True) for i in idx.tolist()])
        tgt_out, _ = pad([self.tgt_vocab.encode(part.tgt[i], eos=True) for i in idx.tolist()])
        return src_ids, src_mask, tgt_in, tgt_out, tgt_mask

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(self.split(name).numbers)}" for name in ("train", "val", "test"))
        return (
            f"NumberTask({sizes}, high={self.high}, length_split={self.length_split}, "
            f"src_vocab={len(self.src_vocab)}, tgt_vocab={len(self.tgt_vocab)})"
        )


def number_task(
    n_train: int,
    n_val: int,
    n_test: int,
    *,
    high: int = 10**9,
    rng: np.random.Generator | int,
    length_split: int | None = None,
) -> NumberTask:
    """A seeded English -> Chinese number translation task with disjoint splits.

    Draws ``n_train + n_val + n_test`` distinct integers in ``[0, high)``,
    log-uniformly in magnitude so that short and long numbers are both
    common: the digit count ``d`` is uniform in ``1 .. D`` (``D`` the digits
    of ``high - 1``), then the number is uniform among those with ``d``
    digits (below ``high``); the 10 one-digit and 90 two-digit numbers are
    used up first when many are asked for, and the rest go to longer ones.
    No integer is in two splits; the same ``rng`` seed gives the same task.

    ``length_split=k`` tests generalisation to longer inputs: training and
    validation numbers have at most ``k`` source tokens (``tokens_en``,
    counting each hyphen), test numbers more than ``k``. Numbers are drawn as
    above and sorted into the two pools until both are full; ``ValueError``
    if there are too few numbers of either kind below ``high``.

    The vocabularies are closed: ``src_vocab`` holds every English token and
    ``tgt_vocab`` every Chinese character of the numbers ``0 .. high-1``
    (built from the word lists, not the sample), so no token of any split is
    unknown. Conventions are those of :func:`english` (British "and") and
    :func:`chinese` (二 not 两, 十 for 10-19, 零 rules of cn2an). Returns a
    :class:`NumberTask`. Chapters 7-9.
    """
    n_train = check_positive_int(n_train, "n_train")
    n_val = check_positive_int(n_val, "n_val", minimum=0)
    n_test = check_positive_int(n_test, "n_test", minimum=0)
    if isinstance(high, bool) or not isinstance(high, (int, np.integer)) or not 2 <= high <= MAX_NUMBER:
        raise ValueError(f"high must be an integer in [2, 10**12], got {high!r}")
    high = int(high)
    total = n_train + n_val + n_test
    if total > high:
        raise ValueError(
            f"number_task: {total} distinct numbers asked for, but only {high} lie in [0, {high})"
        )
    gen = as_generator(rng)
    if length_split is None:
        numbers = _distinct_log_uniform(gen, high, total)
        train, val, test = np.split(numbers, [n_train, n_train + n_val])
    else:
        length_split = check_positive_int(length_split, "length_split")
        short, test = _split_by_length(gen, high, n_train + n_val, n_test, length_split)
        train, val = np.split(short, [n_train])

    def make(numbers: np.ndarray) -> Split:
        src = [tokens_en(english(x)) for x in numbers.tolist()]
        tgt = [tokens_zh(chinese(x)) for x in numbers.tolist()]
        return Split(numbers, src, tgt)

    return NumberTask(
        train=make(train),
        val=make(val),
        test=make(test),
        src_vocab=Vocab(_source_words(high)),
        tgt_vocab=Vocab(_target_chars(high)),
        high=high,
        length_split=length_split,
    )
