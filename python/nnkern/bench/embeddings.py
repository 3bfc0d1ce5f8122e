"""``python -m nnkern.bench --suite embeddings``: Word2Vec against gensim on one corpus.

Both libraries train with the same hyperparameters on the same corpus file, one after the
other in one process, for each mode (SG-NS, CBOW-NS, SG-HS) and seed. Reported per run:
vocabulary time, training time, training words/s (in-vocabulary corpus tokens x epochs over
the wall time of train(); the same count for both), words per CPU-second (all threads; less
disturbed by other load on a shared machine) and quality: Spearman correlation on
wordsim353 and 3CosAdd analogy accuracy on questions-words (both shipped in gensim's test
data), computed with the same evaluator for both libraries.

gensim trains from ``LineSentence(corpus)`` by default (``--gensim-mode iterable``). Its
corpus_file mode is faster but, with more than one worker, decays the learning rate more
slowly than asked (each worker measures progress against the whole corpus: with
workers=2 and epochs=1 the rate ends near alpha / 2, not min_alpha), so its quality is not
that of the requested hyperparameters; ``--gensim-mode corpus_file`` times it anyway.

The corpus: real English obtained from the Debian package registry (``apt-get download``,
no root needed): the Linux kernel documentation (linux-doc-6.1, reStructuredText and text,
translations left out) and the Python 3.11 documentation sources (python3.11-doc), about
6M tokens after text8-style normalisation (lower case, letters only, one paragraph per
line). It is built once into the cache directory. Without apt-get (or with --quick) a
generated topic corpus is used instead, which measures speed but not quality.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

DEBIAN_PACKAGES = ["linux-doc-6.1", "python3.11-doc"]
MODES = {
    "sg-ns": dict(sg=1, hs=0, negative=5),
    "cbow-ns": dict(sg=0, hs=0, negative=5),
    "sg-hs": dict(sg=1, hs=1, negative=0),
}
_WORD = re.compile(r"[a-z]+")


def cache_dir() -> str:
    d = os.environ.get("NNKERN_BENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nnkern")
    os.makedirs(d, exist_ok=True)
    return d


def _paragraphs(text):
    for para in re.split(r"\n\s*\n", text.lower()):
        toks = _WORD.findall(para)
        if len(toks) >= 3:
            yield " ".join(toks)


def debian_corpus(path: str) -> str:
    """Build the English corpus from Debian's documentation packages into `path`."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError("apt-get / dpkg-deb not found")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *DEBIAN_PACKAGES], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
        for deb in glob.glob(os.path.join(tmp, "*.deb")):
            subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True, timeout=900)
        root = os.path.join(tmp, "x", "usr", "share", "doc")
        files = sorted(
            f for f in glob.glob(os.path.join(root, "linux-doc-*", "Documentation", "**", "*.gz"), recursive=True)
            if "/translations/" not in f and f.endswith((".rst.gz", ".txt.gz")))
        files += sorted(glob.glob(os.path.join(root, "python3.11", "html", "_sources", "**", "*.txt"), recursive=True))
        if not files:
            raise RuntimeError("the Debian packages held no documentation sources")
        with open(path + ".part", "w", encoding="utf-8") as out:
            for f in files:
                opener = gzip.open if f.endswith(".gz") else open
                with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
                    for line in _paragraphs(fh.read()):
                        out.write(line + "\n")
    os.replace(path + ".part", path)
    return path


def synthetic_corpus(path: str, sentences: int, seed: int = 0) -> str:
    """Zipf-distributed words in sentences half drawn from one of 50 topics."""
    rng = np.random.default_rng(seed)
    V, T = 30000, 50
    p = 1.0 / np.arange(1, V + 1)
    p /= p.sum()
    topic_of = rng.integers(0, T, size=V)
    members = [np.flatnonzero(topic_of == t) for t in range(T)]
    with open(path, "w") as f:
        for _ in range(sentences):
            w = rng.choice(V, size=20, p=p)
            w[::2] = rng.choice(members[rng.integers(T)], size=10)
            f.write(" ".join(f"w{i}" for i in w) + "\n")
    return path


def get_corpus(args):
    if args.corpus:
        if not os.path.isfile(args.corpus):
            raise FileNotFoundError(f"--corpus: no such file: {args.corpus!r}")
        return args.corpus, f"given file {args.corpus}", True
    d = cache_dir()
    if not args.quick:
        path = os.path.join(d, "debian-docs-en.txt")
        if os.path.isfile(path):
            return path, "Debian linux-doc-6.1 + python3.11-doc (cached)", True
        try:
            print(f"building the English corpus from Debian packages {DEBIAN_PACKAGES} ...", file=sys.stderr)
            return debian_corpus(path), "Debian linux-doc-6.1 + python3.11-doc", True
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"could not build the Debian corpus ({exc}); using a generated corpus", file=sys.stderr)
    n = 15_000 if args.quick else 150_000
    path = os.path.join(d, f"synthetic-{n}.txt")
    if not os.path.isfile(path):
        synthetic_corpus(path, n)
    return path, f"generated topic corpus ({n * 20} tokens, no quality check)", False


def _eval_files():
    try:
        from gensim.test.utils import datapath
    except ImportError:
        return None
    return datapath("wordsim353.tsv"), datapath("questions-words.txt")


def _quality(keys, vectors, files):
    from ..embeddings import KeyedVectors

    if files is None:
        return None, None
    kv = KeyedVectors(vectors.shape[1])
    kv._set(list(keys), vectors)
    _, spearman, _ = kv.evaluate_word_pairs(files[0])
    acc, _ = kv.evaluate_word_analogies(files[1], restrict_vocab=30000)
    return spearman[0], acc


def run_one(lib, corpus, mode, seed, args):
    kw = dict(vector_size=args.vector_size, window=5, min_count=5, sample=1e-3, epochs=args.epochs,
              workers=args.threads, seed=seed, **MODES[mode])
    if lib == "nnkern":
        from .. import Word2Vec

        m = Word2Vec(compute_loss=False, **kw)
    else:
        from gensim.models import Word2Vec

        m = Word2Vec(**kw)
    t0 = time.perf_counter()
    m.build_vocab(corpus_file=corpus)
    t_vocab = time.perf_counter() - t0
    words = sum(m.wv.get_vecattr(w, "count") for w in m.wv.index_to_key) * args.epochs
    c0, t0 = time.process_time(), time.perf_counter()
    if lib == "nnkern":
        m.train(corpus_file=corpus)
    elif args.gensim_mode == "corpus_file":
        m.train(corpus_file=corpus, total_examples=m.corpus_count, total_words=m.corpus_total_words,
                epochs=args.epochs)
    else:
        from gensim.models.word2vec import LineSentence

        m.train(LineSentence(corpus), total_examples=m.corpus_count, epochs=args.epochs)
    t_train, cpu = time.perf_counter() - t0, time.process_time() - c0
    spearman, acc = _quality(m.wv.index_to_key, np.asarray(m.wv.vectors), args.eval_files)
    return dict(lib=lib, mode=mode, seed=seed, vocab=len(m.wv), vocab_s=t_vocab, train_s=t_train,
                words_per_s=words / t_train, words_per_cpu_s=words / cpu,
                wordsim353_spearman=spearman, analogy_accuracy=acc)


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main(args) -> int:
    import nnkern

    try:
        import gensim
    except ImportError:
        print("the embeddings suite compares with gensim: pip install gensim", file=sys.stderr)
        return 2
    modes = list(MODES) if not args.modes else args.modes.split(",")
    for mo in modes:
        if mo not in MODES:
            print(f"--modes: unknown mode {mo!r}; choose from {', '.join(MODES)}", file=sys.stderr)
            return 2
    corpus, desc, real = get_corpus(args)
    args.eval_files = _eval_files() if real else None
    info = nnkern.build_info()
    tokens = os.path.getsize(corpus)
    print(f"nnkern {info['version']} ({info['compiler']}, {info['simd']}), gensim {gensim.__version__}")
    print(f"corpus    {desc}: {corpus} ({tokens / 1e6:.1f} MB)")
    print(f"settings  vector_size {args.vector_size}, window 5, min_count 5, sample 1e-3, "
          f"negative 5, epochs {args.epochs}, workers {args.threads}, seeds {args.seeds}; "
          "load average {:.2f}".format(os.getloadavg()[0]))
    head = (f"{'mode':8s} {'lib':7s} {'seed':>4s} {'vocab':>7s} {'vocab s':>8s} {'train s':>8s} "
            f"{'Mwords/s':>9s} {'Mw/cpu-s':>9s} {'ws353':>6s} {'analogy':>7s}")
    print(head)
    print("-" * len(head))
    rows = []
    for mode in modes:
        for seed in range(1, args.seeds + 1):
            for lib in ("nnkern", "gensim"):
                r = run_one(lib, corpus, mode, seed, args)
                rows.append(r)
                print(f"{mode:8s} {lib:7s} {seed:4d} {r['vocab']:7d} {r['vocab_s']:8.2f} "
                      f"{r['train_s']:8.2f} {r['words_per_s'] / 1e6:9.3f} "
                      f"{r['words_per_cpu_s'] / 1e6:9.3f} {_fmt(r['wordsim353_spearman'], '6.3f')} "
                      f"{_fmt(r['analogy_accuracy'], '7.3f')}", flush=True)
    print()
    for mode in modes:
        sel = {lib: [r for r in rows if r["mode"] == mode and r["lib"] == lib] for lib in ("nnkern", "gensim")}

        def mean(lib, key):
            vals = [r[key] for r in sel[lib] if r[key] is not None]
            return float(np.mean(vals)) if vals else None

        speed = mean("nnkern", "words_per_s") / mean("gensim", "words_per_s")
        cpu = mean("nnkern", "words_per_cpu_s") / mean("gensim", "words_per_cpu_s")
        line = f"{mode:8s} nnkern/gensim words/s {speed:.2f}x (per CPU-second {cpu:.2f}x)"
        if real and args.eval_files:
            ds = mean("nnkern", "wordsim353_spearman") - mean("gensim", "wordsim353_spearman")
            da = 100 * (mean("nnkern", "analogy_accuracy") - mean("gensim", "analogy_accuracy"))
            line += f"; wordsim353 Spearman {ds:+.3f}, analogy {da:+.2f} points"
        print(line)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"corpus": desc, "path": corpus, "rows": rows}, fh, indent=2)
            fh.write("\n")
    return 0
