"""Data loading: clear errors for bad files, vocab, splits and TBPTT streams."""

from __future__ import annotations

import pytest
import torch

from rnn_engine.data.names import NamesData, bucketed_batches
from rnn_engine.data.text import CharCorpus, StreamBatches, read_text
from rnn_engine.data.vocab import UNK, Vocab
from rnn_engine.errors import DataError


def test_non_utf8_names_file_and_offset(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_text(p)
    msg = str(err.value)
    assert str(p) in msg and "byte 3" in msg and "--encoding" in msg
    assert read_text(p, encoding="latin-1") == "caf\u00e9 au lait"
    assert read_text(p, errors="replace").startswith("caf\ufffd")


@pytest.mark.parametrize("content,reason", [(b"", "is empty"), (b"  \n\n", "is empty"),
                                            (b"\x00\x01\x02binary", "binary")])
def test_empty_and_binary_files(tmp_path, content, reason):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(DataError, match=reason):
        CharCorpus.from_file(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_text(tmp_path)


def test_names_dir_without_txt_files(tmp_path):
    (tmp_path / "readme.md").write_text("nothing here")
    with pytest.raises(DataError, match="no .txt files"):
        NamesData.from_dir(tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        NamesData.from_dir(tmp_path / "absent")


def test_vocab_unknown_symbol_round_trip():
    v = Vocab.from_text("hello")
    assert v.itos[0] == UNK and len(v) == 5
    ids = v.encode("hex")
    assert ids.tolist()[2] == 0  # 'x' was never seen
    assert v.decode(v.encode("hello")) == "hello"


def test_split_is_contiguous_last_tenth():
    text = "".join(chr(97 + i % 26) for i in range(1000))
    corpus = CharCorpus.from_text(text)
    assert len(corpus.val) == 100 and len(corpus.train) == 900
    assert corpus.vocab.decode(corpus.val) == text[900:]


def test_too_short_for_one_batch(tmp_path):
    corpus = CharCorpus.from_text("abc" * 40, source="short.txt")
    with pytest.raises(DataError, match="short.txt.*batch_size"):
        corpus.check_fits(batch_size=64, seq_len=100)


def test_streams_continue_across_windows():
    ids = torch.arange(1000)
    stream = StreamBatches(ids, batch_size=4, seq_len=10)
    (x0, y0), (x1, _) = list(stream)[:2]
    assert x0.shape == (10, 4)
    assert torch.equal(y0[:-1], x0[1:])  # targets are the next characters
    assert torch.equal(x1[0], x0[-1] + 1)  # each stream picks up where it stopped
    assert x0[0].tolist() == [0, 249, 498, 747]


def test_names_unidecode_stratified_and_dedupe(tmp_path):
    (tmp_path / "A.txt").write_text("\n".join(["Müller", "Müller", "Zoë"] * 5) + "\n")
    (tmp_path / "B.txt").write_text("\n".join(f"Name{i}" for i in range(20)) + "\n")
    (tmp_path / "C.txt").write_text("\u2603\n")  # a snowman: unidecode gives nothing useful
    data = NamesData.from_dir(tmp_path, seed=3)
    assert data.labels == ["A", "B"]  # C had no usable name
    assert data.dropped == 1
    names = {n for n, _ in data.train + data.test}
    assert "Muller" in names and "Zoe" in names
    counts = {lab: sum(1 for _, y in data.test if data.labels[y] == lab) for lab in ("A", "B")}
    assert counts == {"A": 2, "B": 2}
    deduped = NamesData.from_dir(tmp_path, seed=3, dedupe=True)
    assert deduped.duplicates_removed == 13
    assert len(deduped.train) + len(deduped.test) == 22


def test_bucketed_batches_cover_every_name_once(names_dir):
    data = NamesData.from_dir(names_dir)
    seen = []
    for x, lengths, y in bucketed_batches(data.train, 8, data.vocab, None):
        assert x.shape[1] == len(lengths) == len(y)
        assert int(lengths.max()) == x.shape[0]
        seen.extend(y.tolist())
    assert len(seen) == len(data.train)
