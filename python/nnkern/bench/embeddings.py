"""``python -m nnkern.bench --suite embeddings``: Word2Vec against gensim, and GloVe against
the reference glove.c's throughput, on one corpus.

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

GloVe (``--modes glove``, included by default) trains on the same corpus with vector_size
100 (--vector-size), window 10, min_count 5, workers --threads, --glove-epochs epochs, in a
child process of its own so that its peak RSS is GloVe's alone (Python and NumPy included;
the RSS after imports is shown next to it). Reported: co-occurrence counting time, non-zero
pairs, the median epoch time, AdaGrad updates per second (non-zero pairs over the epoch
time), peak RSS and the same quality measures, against the throughput of the reference
glove.c quoted in the issue (measured by the team, not run here).

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
import resource
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
GLOVE = "glove"
# The reference glove.c (Stanford's C implementation), measured by the team on this
# benchmark's corpus with vector_size 100 and 2 threads; quoted, not run here.
GLOVE_C = dict(updates_per_s=0.82e6, nonzero_pairs=13.5e6, epoch_s=16.4, vector_size=100, threads=2)
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
    try:
        _, spearman, _ = kv.evaluate_word_pairs(files[0])
    except ValueError:  # a corpus that shares fewer than 3 pairs with wordsim353
        spearman = (None,)
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

    modes = list(MODES) + [GLOVE] if not args.modes else args.modes.split(",")
    for mo in modes:
        if mo not in MODES and mo != GLOVE:
            print(f"--modes: unknown mode {mo!r}; choose from {', '.join([*MODES, GLOVE])}",
                  file=sys.stderr)
            return 2
    w2v_modes = [mo for mo in modes if mo in MODES]
    gensim = None
    if w2v_modes:
        try:
            import gensim
        except ImportError:
            print("the word2vec rows compare with gensim: pip install gensim (or --modes glove)",
                  file=sys.stderr)
            return 2
    corpus, desc, real = get_corpus(args)
    args.eval_files = _eval_files() if real else None
    info = nnkern.build_info()
    tokens = os.path.getsize(corpus)
    print(f"nnkern {info['version']} ({info['compiler']}, {info['simd']})"
          + (f", gensim {gensim.__version__}" if gensim else ""))
    print(f"corpus    {desc}: {corpus} ({tokens / 1e6:.1f} MB)")
    doc = {"corpus": desc, "path": corpus, "rows": []}
    if w2v_modes:
        doc["rows"] = word2vec_table(w2v_modes, corpus, real, args)
    if GLOVE in modes:
        if w2v_modes:
            print()
        doc["glove"] = glove_table(corpus, args)
        if doc["glove"] is None:
            return 1
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
    return 0


def _print_head(label, settings, head):
    """The settings line (with the load average, a sign of other work), a header, a rule."""
    print(f"{label:9s} {settings}; load average {os.getloadavg()[0]:.2f}")
    print(head)
    print("-" * len(head))


def word2vec_table(modes, corpus, real, args):
    """Run and print the word2vec rows (nnkern and gensim per mode and seed) and the
    per-mode ratios; returns the rows."""
    _print_head("settings", f"vector_size {args.vector_size}, window 5, min_count 5, sample 1e-3, "
                f"negative 5, epochs {args.epochs}, workers {args.threads}, seeds {args.seeds}",
                f"{'mode':8s} {'lib':7s} {'seed':>4s} {'vocab':>7s} {'vocab s':>8s} {'train s':>8s} "
                f"{'Mwords/s':>9s} {'Mw/cpu-s':>9s} {'ws353':>6s} {'analogy':>7s}")
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
        q = [mean(lib, k) for k in ("wordsim353_spearman", "analogy_accuracy") for lib in ("nnkern", "gensim")]
        if real and args.eval_files and None not in q:
            line += f"; wordsim353 Spearman {q[0] - q[1]:+.3f}, analogy {100 * (q[2] - q[3]):+.2f} points"
        print(line)
    return rows


def _rss_mb(field):
    """VmHWM (peak) or VmRSS (now) of this process in MB, from /proc; getrusage's peak
    where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def glove_child(cfg_json: str) -> None:
    """The GloVe run, in the child process glove_table() starts: prints one JSON line."""
    cfg = json.loads(cfg_json)
    from .. import GloVe

    rss0 = _rss_mb("VmRSS")
    m = GloVe(vector_size=cfg["vector_size"], window=10, min_count=5, workers=cfg["threads"],
              epochs=cfg["epochs"], seed=1)
    t0 = time.perf_counter()
    m.build_vocab(corpus_file=cfg["corpus"])
    t_vocab = time.perf_counter() - t0
    m.build_cooccurrence(corpus_file=cfg["corpus"])
    nnz = len(m.cooccurrence[0])
    epoch_s, cpu_s = [], []
    for _ in range(cfg["epochs"]):
        c0, t0 = time.process_time(), time.perf_counter()
        m.train(epochs=1)  # one epoch at a time: the same run as train(epochs), timed per epoch
        epoch_s.append(time.perf_counter() - t0)
        cpu_s.append(time.process_time() - c0)
    peak = _rss_mb("VmHWM")  # before the evaluation, which is not GloVe's
    spearman, acc = _quality(m.wv.index_to_key, np.asarray(m.wv.vectors), cfg["eval_files"])
    med = float(np.median(epoch_s))
    print(json.dumps(dict(
        lib="nnkern", mode=GLOVE, vocab=len(m.wv), vocab_s=t_vocab,
        cooccurrence_s=m.cooccurrence_seconds, nonzero_pairs=nnz, epoch_s=epoch_s,
        epoch_cpu_s=cpu_s, median_epoch_s=med, updates_per_s=nnz / med,
        final_loss_per_pair=m.epoch_losses[-1] / nnz, rss_after_import_mb=rss0,
        peak_rss_mb=peak, wordsim353_spearman=spearman, analogy_accuracy=acc)))


def glove_table(corpus, args):
    """Run GloVe in a child process and print its row and the ratio to glove.c; returns the
    row (None when the child failed)."""
    cfg = dict(corpus=corpus, vector_size=args.vector_size, threads=args.threads,
               epochs=args.glove_epochs, eval_files=args.eval_files)
    _print_head("GloVe", f"vector_size {args.vector_size}, window 10, min_count 5, x_max 100, "
                f"workers {args.threads}, epochs {args.glove_epochs}, in its own process",
                f"{'mode':8s} {'lib':7s} {'vocab':>7s} {'vocab s':>8s} {'cooc s':>7s} {'pairs':>11s} "
                f"{'epoch s':>8s} {'Mupd/s':>7s} {'RSS MB':>7s} {'peak MB':>8s} {'ws353':>6s} {'analogy':>7s}")
    code = "import sys; from nnkern.bench.embeddings import glove_child; glove_child(sys.argv[1])"
    p = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], capture_output=True,
                       text=True, check=False)
    if p.returncode != 0:
        print(f"the GloVe run failed (exit code {p.returncode}):\n{p.stderr}", file=sys.stderr)
        return None
    # the last JSON line: an editable install may print its rebuild log before it
    r = json.loads([line for line in p.stdout.splitlines() if line.startswith("{")][-1])
    print(f"{GLOVE:8s} {'nnkern':7s} {r['vocab']:7d} {r['vocab_s']:8.2f} {r['cooccurrence_s']:7.2f} "
          f"{r['nonzero_pairs']:11,d} {r['median_epoch_s']:8.2f} {r['updates_per_s'] / 1e6:7.2f} "
          f"{r['rss_after_import_mb']:7.0f} {r['peak_rss_mb']:8.0f} "
          f"{_fmt(r['wordsim353_spearman'], '6.3f')} {_fmt(r['analogy_accuracy'], '7.3f')}")
    ref = GLOVE_C
    print(f"{GLOVE:8s} {'glove.c':7s} reference measured by the team, not run here: "
          f"{ref['updates_per_s'] / 1e6:.2f}M updates/s (vector_size {ref['vector_size']}, "
          f"{ref['threads']} threads, {ref['nonzero_pairs'] / 1e6:.1f}M non-zero pairs, "
          f"{ref['epoch_s']:.1f} s per epoch)")
    print(f"{GLOVE:8s} nnkern/glove.c AdaGrad updates/s {r['updates_per_s'] / ref['updates_per_s']:.2f}x "
          f"(epochs {min(r['epoch_s']):.2f}-{max(r['epoch_s']):.2f} s)", flush=True)
    r["reference_glove_c"] = dict(ref)
    r["ratio_to_glove_c"] = r["updates_per_s"] / ref["updates_per_s"]
    return r
