"""Classic baselines: TF-IDF, word2vec, GloVe loading, evaluations — against the usual ways.

    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_classic.py [--quick]

Targets (issue 7): TF-IDF of the 3 MB ``enwiki-sample`` into 10 chunks <= 5 s; word2vec 5 epochs on it
with 2 workers <= 60 s; GloVe 400,000 x 50 opened as a space <= 2 s.
Baselines: scikit-learn's TfidfVectorizer on the 10 chunk strings and a plain Python dict loop;
gensim's Word2Vec on an in-memory list of sentences; ``np.load`` without mmap and gensim's
``KeyedVectors.load_word2vec_format`` of the same vectors; gensim's ``evaluate_word_analogies``.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, median_time, print_machine, run_timed, runs_note  # noqa: E402

QUICK = "--quick" in sys.argv
R = 2 if QUICK else 5


def line(name: str, seconds: float, baseline: float | None = None, base_name: str = "", *, n: int,
         base_n: int | None = None) -> None:
    """One figure (``n`` runs) and, when given, its baseline (``base_n`` runs, default ``n``)."""
    ratio = (f"   {baseline / seconds:5.1f}x faster than {base_name} ({baseline:.3f} s, {runs_note(base_n or n)})"
             if baseline else "")
    print(f"  {name:<52} {seconds:8.3f} s ({runs_note(n)}){ratio}", flush=True)


def corpus_text(spec: str) -> str:
    from embedlens.corpus.reading import open_corpus

    return "".join(open_corpus(spec).iter_chunks())


def bench_tfidf() -> None:
    from embedlens.classic.tfidf import tfidf

    print(f"TF-IDF, enwiki-sample into 10 chunks (median of {R})")
    text = corpus_text("enwiki-sample")
    n_words = len(re.findall(r"\w+", text))
    print(f"  corpus: {len(text.encode()) / 1e6:.1f} MB, {n_words:,} words")
    ours = median_time(lambda: tfidf("enwiki-sample", 10), repeats=R)

    def sklearn_way():
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = re.findall(r"\w+", corpus_text("enwiki-sample").lower())
        docs = [" ".join(c) for c in np.array_split(np.array(words, dtype=object), 10)]
        return TfidfVectorizer(token_pattern=r"(?u)\w+", norm=None, smooth_idf=False).fit_transform(docs)

    def dict_loop():
        words = re.findall(r"\w+", corpus_text("enwiki-sample").lower())
        chunks = np.array_split(np.array(words, dtype=object), 10)
        counters = [Counter(c.tolist()) for c in chunks]
        df = Counter(w for c in counters for w in c)
        return {w: [c[w] / len(ch) * math.log(10 / df[w]) for c, ch in zip(counters, chunks, strict=True)] for w in df}

    sk = median_time(sklearn_way, repeats=R)
    naive = median_time(dict_loop, repeats=R)
    line("embedlens tfidf() (read + ids + counts)", ours, sk, "sklearn TfidfVectorizer", n=R)
    line("", ours, naive, "Python dict loop", n=R)
    with tempfile.TemporaryDirectory() as tmp:
        wall, rss = run_timed([EMBEDLENS, "tfidf", "enwiki-sample", "--out", f"{tmp}/run"], repeats=3)
    line(f"CLI `embedlens tfidf enwiki-sample` (peak {rss:.0f} MB)", wall, n=3)


def bench_word2vec() -> None:
    from embedlens.classic.tfidf import words_of
    from embedlens.classic.word2vec import train_word2vec
    from embedlens.corpus.reading import open_corpus

    reps = 1 if QUICK else 3
    print(f"word2vec CBOW, dim 100, 5 epochs, enwiki-sample, 2 workers ({runs_note(reps)})")
    ours = median_time(lambda: train_word2vec("enwiki-sample", epochs=5, workers=2, progress=False), repeats=reps, warmup=0)

    def gensim_way():
        from gensim.models import Word2Vec

        sentences = [words_of(t) for _, t in open_corpus("enwiki-sample").iter_documents()]
        return Word2Vec(sentences, vector_size=100, window=5, min_count=5, epochs=5, workers=2, seed=0)

    base = median_time(gensim_way, repeats=reps, warmup=0)
    line("embedlens train_word2vec (streamed sentences)", ours, base, "gensim Word2Vec on a list", n=reps)
    one = median_time(lambda: train_word2vec("enwiki-sample", epochs=5, workers=1, progress=False), repeats=1, warmup=0)
    line("  same with 1 worker (deterministic)", one, n=1)


def bench_glove() -> Path:
    from embedlens.classic.glove import glove_files, load_glove

    print(f"GloVe 400,000 x 50 opened as a space (median of {R})")
    code = "from embedlens.handles import open_space; open_space('glove-50d')"
    cold, rss = run_timed([sys.executable, "-c", code], repeats=R)
    bare, _ = run_timed([sys.executable, "-c", "import embedlens.handles"], repeats=R)
    ours = median_time(lambda: load_glove.__wrapped__(), repeats=R)
    npy, parquet = glove_files()

    def np_load():
        import pyarrow.parquet as pq

        return np.load(npy, mmap_mode="r"), pq.read_table(parquet).column(0).to_pylist()

    base = median_time(np_load, repeats=R)
    line("load_glove() in-process (mmap + word list + labels)", ours, base, "np.load(mmap_mode='r') + words", n=R)
    line(f"fresh process, open_space('glove-50d') (peak {rss:.0f} MB)", cold, n=R)
    line("  of which Python + embedlens import", bare, n=R)
    tmp = Path(tempfile.mkdtemp()) / "glove.bin"
    from gensim.models import KeyedVectors

    kv = KeyedVectors(50)
    sp = load_glove()
    kv.add_vectors(list(sp.labels), np.asarray(sp.vectors))
    kv.save_word2vec_format(str(tmp), binary=True)
    reps = 1 if QUICK else 3
    gensim_load = median_time(lambda: KeyedVectors.load_word2vec_format(str(tmp), binary=True), repeats=reps, warmup=0)
    line("", ours, gensim_load, "gensim load_word2vec_format(binary)", n=R, base_n=reps)
    return tmp


def bench_evaluate(glove_bin: Path) -> None:
    from embedlens.classic.evaluate import dataset_path, evaluate
    from embedlens.classic.glove import load_glove
    from embedlens.lens import SpaceLens

    print("evaluate GloVe 50d (one run each; scipy already imported)")
    lens = SpaceLens(load_glove())
    import scipy.stats  # noqa: F401  (its import, ~1 s, is not part of the evaluation)

    t = time.perf_counter()
    ev = evaluate(lens)
    total = time.perf_counter() - t
    for name in ("wordsim353", "simlex999"):
        s = getattr(ev, name)
        print(f"  {name:<12} spearman {s.spearman:.4f}  coverage {s.coverage:.3f}  ({ev.timings[name]:.2f} s)")
    a = ev.analogies
    print(f"  analogies    accuracy {a.accuracy:.4f}  coverage {a.coverage:.3f}  restrict {a.restrict_vocab:,}  ({ev.timings['analogies']:.2f} s)")
    line("evaluate() all three", total, n=1)
    for spec in ("smollm2-135m", "minilm-l6"):
        try:
            import embedlens

            model = embedlens.load(spec)
            t = time.perf_counter()
            mev = evaluate(model)
            m_s = time.perf_counter() - t
        except Exception as exc:  # a model that is not installed should not stop the benchmark
            print(f"  {spec}: not evaluated ({type(exc).__name__}: {exc})")
            continue
        w, s, a = mev.wordsim353, mev.simlex999, mev.analogies
        print(f"  {spec}: wordsim353 {w.spearman:.4f} (single-token pairs {w.single_token_coverage:.0%}), "
              f"simlex999 {s.spearman:.4f} (single-token {s.single_token_coverage:.0%}), "
              f"analogies {a.accuracy if a.accuracy is not None else float('nan'):.4f} (coverage {a.coverage:.3f}) in {m_s:.1f} s")
    if QUICK:
        return
    t = time.perf_counter()
    wide = evaluate(lens, tasks=["analogies"], restrict_vocab=300_000).analogies
    wide_s = time.perf_counter() - t
    print(f"  analogies    accuracy {wide.accuracy:.4f}  coverage {wide.coverage:.3f}  restrict 300,000  ({wide_s:.2f} s)")
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(str(glove_bin), binary=True)
    t = time.perf_counter()
    score, _ = kv.evaluate_word_analogies(str(dataset_path("analogies")), restrict_vocab=30_000)
    gensim_s = time.perf_counter() - t
    print(f"  gensim evaluate_word_analogies(restrict_vocab=30,000): accuracy {score:.4f}")
    line("analogies, restrict 30,000", ev.timings["analogies"], gensim_s, "gensim evaluate_word_analogies", n=1)


def main() -> None:
    print_machine()
    bench_tfidf()
    bench_word2vec()
    glove_bin = bench_glove()
    bench_evaluate(glove_bin)


if __name__ == "__main__":
    main()
