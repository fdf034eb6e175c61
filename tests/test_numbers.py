"""English number words -> Chinese numerals (dlbook.numbers): readings, tokens, vocabularies, the task.

The readings are checked against two independent references, ``num2words``
(English, commas removed) and ``cn2an`` (Chinese), which are test-only
dependencies: the package has its own code.
"""

import numpy as np
import pytest
from cn2an import an2cn
from num2words import num2words

from dlbook import numbers
from dlbook.numbers import (
    Vocab,
    chinese,
    detokenize_en,
    detokenize_zh,
    english,
    number_task,
    pad,
    tokens_en,
    tokens_zh,
)


def reference_en(n: int) -> str:
    return num2words(n, lang="en").replace(",", "")


def _zero_heavy(rng: np.random.Generator, size: int) -> list[int]:
    """12-digit strings whose digits are 0 with probability 0.7: runs of zeros and zero groups are common."""
    digits = rng.integers(1, 10, size=(size, 12)) * (rng.random((size, 12)) < 0.3)
    return [int("".join(map(str, row))) for row in digits]


def _checked_numbers() -> list[int]:
    rng = np.random.default_rng(2024)
    every = list(range(20001))
    random = rng.integers(0, 10**12, size=20000).tolist()  # almost all have 12 digits
    return every + random + _zero_heavy(rng, 3000)


CHECKED = _checked_numbers()

# written by hand from the conventions (not copied from the references)
HAND = [
    (0, "zero", "零"),
    (7, "seven", "七"),
    (10, "ten", "十"),
    (15, "fifteen", "十五"),
    (20, "twenty", "二十"),
    (21, "twenty-one", "二十一"),
    (100, "one hundred", "一百"),
    (101, "one hundred and one", "一百零一"),
    (110, "one hundred and ten", "一百一十"),
    (115, "one hundred and fifteen", "一百一十五"),
    (222, "two hundred and twenty-two", "二百二十二"),
    (1000, "one thousand", "一千"),
    (1005, "one thousand and five", "一千零五"),
    (1010, "one thousand and ten", "一千零一十"),
    (1100, "one thousand one hundred", "一千一百"),
    (10000, "ten thousand", "一万"),
    (10001, "ten thousand and one", "一万零一"),
    (10010, "ten thousand and ten", "一万零一十"),
    (100000, "one hundred thousand", "十万"),
    (100100, "one hundred thousand one hundred", "十万零一百"),
    (150000, "one hundred and fifty thousand", "十五万"),
    (321405, "three hundred and twenty-one thousand four hundred and five", "三十二万一千四百零五"),
    (2000040, "two million and forty", "二百万零四十"),
    (100000000, "one hundred million", "一亿"),
    (100000001, "one hundred million and one", "一亿零一"),
    (100001000, "one hundred million one thousand", "一亿一千"),  # cn2an: no 零 before 一千
    (100100000, "one hundred million one hundred thousand", "一亿零一十万"),
    (1000000000, "one billion", "十亿"),
    (1000000005, "one billion and five", "十亿零五"),
    (
        999999999999,
        "nine hundred and ninety-nine billion nine hundred and ninety-nine million "
        "nine hundred and ninety-nine thousand nine hundred and ninety-nine",
        "九千九百九十九亿九千九百九十九万九千九百九十九",
    ),
]


# -- the readings ----------------------------------------------------------------------


@pytest.mark.parametrize(("n", "en", "zh"), HAND)
def test_hand_written_cases(n, en, zh):
    assert english(n) == en
    assert chinese(n) == zh
    assert reference_en(n) == en and an2cn(n) == zh  # the references agree with the stated conventions


def test_english_equals_num2words():
    wrong = [(n, english(n), reference_en(n)) for n in CHECKED if english(n) != reference_en(n)]
    assert not wrong, f"{len(wrong)} differ, e.g. {wrong[:3]}"


def test_chinese_equals_cn2an():
    wrong = [(n, chinese(n), an2cn(n)) for n in CHECKED if chinese(n) != an2cn(n)]
    assert not wrong, f"{len(wrong)} differ, e.g. {wrong[:3]}"


def test_checked_numbers_cover_the_zero_rules():
    # the sample must reach the cases the rules are about, or the comparison proves little
    groups = [((n // 10**8) % 10**4, (n // 10**4) % 10**4, n % 10**4) for n in CHECKED]
    assert any(a and b == 0 and 0 < c < 1000 for a, b, c in groups)  # 零 across a zero group
    assert any(a and b == 0 and c >= 1000 for a, b, c in groups)  # cn2an's no-零 case
    assert any(n >= 10**9 and n % 1000 and n % 1000 < 100 for n in CHECKED)  # "billion ... and five"
    assert max(CHECKED) >= 10**11


def test_numpy_integers_are_accepted():
    assert english(np.int64(321405)) == english(321405)
    assert chinese(np.int32(15)) == "十五"


@pytest.mark.parametrize("fn", [english, chinese])
def test_bad_numbers_raise_clear_errors(fn):
    for n in (-1, 10**12, 10**15):
        with pytest.raises(ValueError, match=r"\[0, 10\*\*12\), got"):
            fn(n)
    for n in (5.0, True, "5", None, np.float64(3)):
        with pytest.raises(TypeError, match="must be an integer"):
            fn(n)


# -- tokens ---------------------------------------------------------------------------


def test_tokens_en_splits_words_and_keeps_hyphens():
    assert tokens_en("twenty-one") == ["twenty", "-", "one"]
    assert tokens_en(english(321405)) == [
        "three", "hundred", "and", "twenty", "-", "one", "thousand", "four", "hundred", "and", "five",
    ]  # fmt: skip
    assert tokens_en("") == []
    assert detokenize_en(["twenty", "-", "one", "thousand"]) == "twenty-one thousand"


def test_tokens_zh_one_per_character():
    assert tokens_zh("三十二万") == ["三", "十", "二", "万"]
    assert detokenize_zh(["十", "五"]) == "十五"


def test_detokenize_inverts_tokens():
    for n in CHECKED[::7]:
        en, zh = english(n), chinese(n)
        assert detokenize_en(tokens_en(en)) == en
        assert detokenize_zh(tokens_zh(zh)) == zh


def test_tokenizers_refuse_wrong_types():
    for fn in (tokens_en, tokens_zh):
        with pytest.raises(TypeError, match="must be a str"):
            fn(["one"])
    for fn in (detokenize_en, detokenize_zh):
        with pytest.raises(TypeError, match="list of str"):
            fn("one")
        with pytest.raises(TypeError, match="every token must be a str"):
            fn(["one", 2])


# -- vocabulary and padding ----------------------------------------------------------------


def test_vocab_specials_first_then_sorted_tokens():
    vocab = Vocab([["b", "a"], ["c", "a"], ["<eos>"]])
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c"]
    assert vocab.stoi == {tok: i for i, tok in enumerate(vocab.itos)}
    assert len(vocab) == 7
    assert (Vocab.PAD, Vocab.BOS, Vocab.EOS, Vocab.UNK) == (0, 1, 2, 3)


def test_vocab_encode_decode_round_trip():
    vocab = Vocab(tokens_en(english(n)) for n in range(1000))
    for n in (0, 21, 115, 999):
        tokens = tokens_en(english(n))
        ids = vocab.encode(tokens)
        assert ids.dtype == np.int64 and ids.shape == (len(tokens),)
        assert vocab.decode(ids) == tokens
        full = vocab.encode(tokens, bos=True, eos=True)
        assert full[0] == Vocab.BOS and full[-1] == Vocab.EOS and len(full) == len(tokens) + 2
        assert vocab.decode(full) == tokens
    assert vocab.unknown_count == 0


def test_vocab_decode_stops_at_eos_and_drops_pad_and_bos():
    vocab = Vocab([["a", "b"]])
    a, b = vocab.stoi["a"], vocab.stoi["b"]
    assert vocab.decode([1, a, 0, b, 2, a, a]) == ["a", "b"]
    assert vocab.decode(np.array([2, a])) == []
    assert vocab.decode([a, 3]) == ["a", "<unk>"]
    assert vocab.decode([]) == []
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        vocab.decode([a, 9])
    with pytest.raises(TypeError, match="integers"):
        vocab.decode([1.0, 2.0])


def test_unknown_tokens_become_unk_and_are_counted():
    vocab = Vocab([["one", "two"]])
    ids = vocab.encode(["one", "seven", "two", "eleven"])
    assert ids.tolist() == [vocab.stoi["one"], 3, vocab.stoi["two"], 3]
    assert vocab.unknown_count == 2
    vocab.encode(["zero"])
    assert vocab.unknown_count == 3  # a running total
    vocab.encode(["one"])
    assert vocab.unknown_count == 3


def test_vocab_refuses_a_flat_list_of_strings():
    with pytest.raises(TypeError, match="iterable of token lists"):
        Vocab(["one", "two"])
    with pytest.raises(TypeError, match="iterable of token lists"):
        Vocab("one two")
    with pytest.raises(TypeError, match="list of str"):
        Vocab([["one"]]).encode("one")


def test_pad_ids_and_mask():
    ids, mask = pad([[5, 6, 7], [8], np.array([9, 10])])
    assert ids.dtype == np.int64 and mask.dtype == bool
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [9, 10, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    ids, _ = pad([[1], [2, 3]], pad_id=-1)
    np.testing.assert_array_equal(ids, [[1, -1], [2, 3]])


def test_pad_errors():
    with pytest.raises(ValueError, match="empty; expected at least one sequence"):
        pad([])
    with pytest.raises(ValueError, match="sequence 0 is empty"):
        pad([[]])
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        pad([[1, 2], []])
    with pytest.raises(TypeError, match="integer ids, got dtype float64"):
        pad([[1.5, 2.0]])
    with pytest.raises(ValueError, match="must be 1-D"):
        pad([[[1, 2]]])
    with pytest.raises(TypeError, match="pad_id"):
        pad([[1]], pad_id=0.0)


# -- the task -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task():
    return number_task(600, 100, 100, rng=0)


def _parts(task):
    return [task.train, task.val, task.test]


def test_task_sizes_and_disjoint_splits(task):
    assert [len(p.numbers) for p in _parts(task)] == [600, 100, 100]
    for p in _parts(task):
        assert p.numbers.dtype == np.int64 and p.numbers.ndim == 1
        assert len(p.src) == len(p.tgt) == len(p.numbers)
        assert len(set(p.numbers.tolist())) == len(p.numbers)
        assert p.numbers.min() >= 0 and p.numbers.max() < 10**9
    train, val, test = (set(p.numbers.tolist()) for p in _parts(task))
    assert not (train & val) and not (train & test) and not (val & test)


def test_task_pairs_are_the_references(task):
    for p in _parts(task):
        for n, src, tgt in zip(p.numbers.tolist(), p.src, p.tgt, strict=True):
            assert detokenize_en(src) == reference_en(n)
            assert detokenize_zh(tgt) == an2cn(n)


def test_task_is_seeded(task):
    again = number_task(600, 100, 100, rng=0)
    other = number_task(600, 100, 100, rng=1)
    for p, q in zip(_parts(task), _parts(again), strict=True):
        np.testing.assert_array_equal(p.numbers, q.numbers)
        assert p.src == q.src and p.tgt == q.tgt
    assert not np.array_equal(task.train.numbers, other.train.numbers)
    gen_a, gen_b = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(
        number_task(50, 5, 5, rng=gen_a).test.numbers, number_task(50, 5, 5, rng=gen_b).test.numbers
    )
    with pytest.raises(ValueError, match="seed"):
        number_task(10, 1, 1, rng=None)


def test_task_magnitudes_are_log_uniform():
    t = number_task(7000, 1000, 1000, rng=3)
    digits = np.concatenate([[len(str(n)) for n in p.numbers.tolist()] for p in _parts(t)])
    counts = np.bincount(digits, minlength=10)[1:]
    # 1000 per digit count is asked for; only 10, 90 and 900 numbers have 1, 2 and 3 digits,
    # so those are used up and their surplus is spread evenly over 4 .. 9 digits
    assert counts[:3].tolist() == [10, 90, 900]
    expected = (9000 - 1000) / 6
    assert np.all(np.abs(counts[3:] - expected) < 0.1 * expected), counts


def test_task_can_use_every_number_below_high():
    t = number_task(80, 10, 10, high=100, rng=0)
    assert sorted(np.concatenate([p.numbers for p in _parts(t)]).tolist()) == list(range(100))


def test_every_token_is_in_the_vocabularies(task):
    for p in _parts(task):
        for src, tgt in zip(p.src, p.tgt, strict=True):
            assert all(tok in task.src_vocab.stoi for tok in src)
            assert all(tok in task.tgt_vocab.stoi for tok in tgt)
    for name in ("train", "val", "test"):
        task.batch(name, np.arange(len(task.split(name).numbers)))
    assert task.src_vocab.unknown_count == 0 and task.tgt_vocab.unknown_count == 0


@pytest.mark.parametrize("high", [2, 11, 25, 101, 150, 1001, 12345])
def test_vocabularies_are_exactly_the_tokens_below_high(high):
    t = number_task(1, 0, 0, high=high, rng=0)
    src = set().union(*(tokens_en(english(n)) for n in range(high)))
    tgt = set().union(*(tokens_zh(chinese(n)) for n in range(high)))
    assert t.src_vocab.itos[4:] == sorted(src)
    assert t.tgt_vocab.itos[4:] == sorted(tgt)


def test_vocabularies_of_the_full_range():
    t = number_task(10, 0, 0, high=10**12, rng=0)
    words = (
        set(numbers._ONES)
        | set(numbers._TENS[2:])
        | {"hundred", "and", "-", "thousand", "million", "billion"}
    )
    assert set(t.src_vocab.itos[4:]) == words
    assert set(t.tgt_vocab.itos[4:]) == set("零一二三四五六七八九十百千万亿")


def test_length_split():
    t = number_task(300, 50, 80, rng=1, length_split=6)
    assert t.length_split == 6
    assert max(len(s) for s in t.train.src + t.val.src) <= 6
    assert min(len(s) for s in t.test.src) > 6
    assert [len(p.numbers) for p in _parts(t)] == [300, 50, 80]
    all_numbers = np.concatenate([p.numbers for p in _parts(t)])
    assert len(set(all_numbers.tolist())) == len(all_numbers)
    again = number_task(300, 50, 80, rng=1, length_split=6)
    np.testing.assert_array_equal(t.test.numbers, again.test.numbers)
    # 28 numbers are one token long (zero .. nineteen and the tens): 40 cannot be found
    with pytest.raises(ValueError, match="could not find 40 numbers"):
        number_task(30, 10, 1, high=1000, rng=0, length_split=1)


def test_batch_shapes_masks_bos_eos(task):
    idx = np.array([0, 5, 17, 3])
    src_ids, src_mask, tgt_in, tgt_out, tgt_mask = task.batch("train", idx)
    src_len = [len(task.train.src[i]) for i in idx]
    tgt_len = [len(task.train.tgt[i]) + 1 for i in idx]
    assert src_ids.shape == src_mask.shape == (4, max(src_len))
    assert tgt_in.shape == tgt_out.shape == tgt_mask.shape == (4, max(tgt_len))
    assert src_ids.dtype == tgt_in.dtype == tgt_out.dtype == np.int64
    assert src_mask.dtype == tgt_mask.dtype == bool
    np.testing.assert_array_equal(src_mask.sum(1), src_len)
    np.testing.assert_array_equal(tgt_mask.sum(1), tgt_len)
    assert (
        np.all(src_ids[~src_mask] == 0) and np.all(tgt_in[~tgt_mask] == 0) and np.all(tgt_out[~tgt_mask] == 0)
    )
    assert np.all(tgt_in[:, 0] == Vocab.BOS)
    for row, (i, length) in enumerate(zip(idx, tgt_len, strict=True)):
        assert tgt_out[row, length - 1] == Vocab.EOS
        np.testing.assert_array_equal(tgt_in[row, 1:length], tgt_out[row, : length - 1])  # shifted by one
        assert task.src_vocab.decode(src_ids[row]) == task.train.src[i]
        assert task.tgt_vocab.decode(tgt_in[row]) == task.train.tgt[i]
        assert task.tgt_vocab.decode(tgt_out[row]) == task.train.tgt[i]
    whole = task.batch("val", slice(None))
    assert whole[0].shape[0] == 100


def test_batch_errors(task):
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        task.batch("dev", [0])
    with pytest.raises(ValueError, match="indices into the 100 samples"):
        task.batch("test", [100])
    with pytest.raises(ValueError, match="no samples"):
        task.batch("test", [])
    with pytest.raises(TypeError, match="integers"):
        task.batch("test", [0.5])


def test_number_task_bad_arguments():
    with pytest.raises(ValueError, match="n_train must be a positive integer"):
        number_task(0, 1, 1, rng=0)
    with pytest.raises(ValueError, match="n_val must be an integer >= 0"):
        number_task(1, -1, 1, rng=0)
    with pytest.raises(ValueError, match="only 100 lie"):
        number_task(90, 10, 1, high=100, rng=0)
    with pytest.raises(ValueError, match="high must be an integer"):
        number_task(1, 0, 0, high=10**12 + 1, rng=0)
    with pytest.raises(ValueError, match="high must be an integer"):
        number_task(1, 0, 0, high=100.0, rng=0)
    with pytest.raises(ValueError, match="length_split must be a positive integer"):
        number_task(1, 0, 0, rng=0, length_split=0)
