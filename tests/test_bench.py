"""The benchmark CLI runs end to end: it validates before timing, writes JSON and markdown,
and reports a failing validation through its exit code. (Speed itself is never asserted.)"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nnkern.bench import cli
from nnkern.bench import harness as h


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnkern.bench", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_list_names_every_case():
    p = run_cli("--list")
    assert p.returncode == 0, p.stderr
    for name in ("softmax/fwd", "log_softmax/fwd", "cross_entropy/fwd+bwd", "dense/fwd+bwd",
                 "sigmoid/fwd", "lstm/fwd+bwd", "gru/fwd+bwd lengths", "rnn/fwd+bwd",
                 "numpy matmul", "memcpy"):
        assert name in p.stdout


def test_quick_run_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench.json"
    p = run_cli("--quick", "--no-reference", "--filter", "^(relu/fwd|dense/fwd) ",
                "--threads", "1", "--json", str(out), "--markdown")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "| case |" in p.stdout and "relu/fwd" in p.stdout and "dense/fwd" in p.stdout
    doc = json.loads(out.read_text())
    assert doc["settings"]["threads"] == 1
    assert doc["machine"]["nnkern_build"]["native"] in (True, False)
    assert doc["machine"]["nnkern_threads"] == 1
    names = {r["name"] for r in doc["rows"]}
    assert names == {"relu/fwd", "dense/fwd"}
    for r in doc["rows"]:
        assert r["status"] == "ok", r
        assert r["times_s"]["nnkern"] > 0


def test_bad_filter_is_reported():
    p = run_cli("--filter", "(")
    assert p.returncode == 2
    assert "--filter" in p.stderr


def test_mismatch_fails_the_run(monkeypatch, capsys):
    # A case whose "fast" result is wrong must be reported and make the exit code 1.
    @h.register("test/broken", "3", bytes=24)
    def _broken():
        x = np.arange(3.0, dtype=np.float32)
        return {"nnkern": lambda: x + 1, "numpy": lambda: x, "torch": None}

    try:
        assert cli.main(["--quick", "--no-torch", "--no-reference", "--filter", "^test/broken"]) == 1
        assert "MISMATCH" in capsys.readouterr().out
    finally:
        h.CASES[:] = [c for c in h.CASES if c.name != "test/broken"]


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_bad_threads_rejected(threads):
    p = run_cli("--threads", threads, "--list")
    assert p.returncode != 0 and "--threads" in p.stderr


def test_embeddings_suite_quick(tmp_path, monkeypatch, capsys):
    pytest.importorskip("gensim")
    monkeypatch.setenv("NNKERN_BENCH_CACHE", str(tmp_path))
    out = tmp_path / "emb.json"
    rc = cli.main(["--suite", "embeddings", "--quick", "--modes", "cbow-ns", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "cbow-ns" in text and "nnkern/gensim words/s" in text
    rows = json.loads(out.read_text())["rows"]
    assert {r["lib"] for r in rows} == {"nnkern", "gensim"}
    assert all(r["words_per_s"] > 0 and r["vocab"] > 0 for r in rows)


def test_embeddings_suite_bad_mode(tmp_path, monkeypatch):
    pytest.importorskip("gensim")
    monkeypatch.setenv("NNKERN_BENCH_CACHE", str(tmp_path))
    assert cli.main(["--suite", "embeddings", "--quick", "--modes", "skipgram"]) == 2


def test_embeddings_suite_glove_only(tmp_path, capsys):
    # a tiny generated corpus: the GloVe rows run in their own process, without gensim
    from nnkern.bench import embeddings

    corpus = embeddings.synthetic_corpus(str(tmp_path / "tiny.txt"), 400)
    out = tmp_path / "glove.json"
    rc = cli.main(["--suite", "embeddings", "--corpus", corpus, "--modes", "glove",
                   "--glove-epochs", "2", "--vector-size", "8", "--threads", "1", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "nnkern/glove.c AdaGrad updates/s" in text and "0.82M updates/s" in text
    assert "Mwords/s" not in text  # no word2vec rows
    doc = json.loads(out.read_text())
    assert doc["rows"] == []
    g = doc["glove"]
    assert g["mode"] == "glove" and g["vocab"] > 0 and g["nonzero_pairs"] > 0
    assert len(g["epoch_s"]) == 2 and g["updates_per_s"] > 0 and g["cooccurrence_s"] > 0
    assert g["peak_rss_mb"] >= g["rss_after_import_mb"] > 0
    np.testing.assert_allclose(g["ratio_to_glove_c"], g["updates_per_s"] / 0.82e6)


def test_embeddings_suite_bad_glove_epochs():
    p = run_cli("--suite", "embeddings", "--modes", "glove", "--glove-epochs", "0")
    assert p.returncode != 0 and "--glove-epochs" in p.stderr


def test_alternating_blocks_share_the_time_window():
    """nnkern's and torch's samples are taken in alternating blocks (the order reversed every
    other block), every sample counted once, each block after one untimed call."""
    log = []
    fns = {"nnkern": lambda: log.append("n"), "torch": lambda: log.append("t")}
    s = h.Settings(repeats=6, warmup_time=0.0, min_warmup=1, settle=0.0, blocks=3)
    times = h.measure_alternating(fns, s, {})
    assert set(times) == {"nnkern", "torch"}
    assert times["nnkern"].repeats == times["torch"].repeats == 6
    # calls per sample: sub-millisecond calls are looped to ~1 ms
    num = times["nnkern"].number
    assert times["torch"].number >= 1 and num >= 1
    timed = "".join(log[2:])  # after one warm-up call each
    n_per_block = 1 + 2 * num  # the untimed call, then two samples of `num` calls
    t_per_block = 1 + 2 * times["torch"].number
    expected = ("n" * n_per_block + "t" * t_per_block + "t" * t_per_block + "n" * n_per_block
                + "n" * n_per_block + "t" * t_per_block)
    assert timed == expected
