"""Near-dedup at scale, side by side in one run: the implementation before (datasketch), the columnar one, rensa.

1. Speed and memory. Rows of 45-55 words from a Zipf vocabulary of 20,000, 5% of them near copies
   (2 words changed), for each ``--rows`` size; each variant runs in a fresh subprocess that reads the
   corpus from Parquet and reports its wall time, CPU time, rows/s and its peak resident memory (VmHWM:
   the whole process, the corpus included; and its peak once the corpus was read, before the call):
     before     ``wb.dedup`` as it was at commit BEFORE (datasketch MinHashLSH, per-row Python), loaded from git
     columnar   ``wb.dedup`` now (polars and numpy, bands 21 x 6)
     rensa      the same pipeline with rensa's Rust MinHash for the signatures (when rensa is installed)
   and how many rows each marks differently from the columnar one.
2. Recall and precision on a 20,000-row sample with 2,000 planted near copies at known Jaccard
   similarity (spread over 0.5-1.0), against the exact reference (every pair that shares a shingle, its
   Jaccard computed exactly, clustered transitively): of the reference pairs at or above the threshold,
   the share each variant puts in one cluster (recall, also by similarity), and of the rows it marks, the
   share marked into their reference cluster (precision).
3. Self-Instruct's ROUGE-L pool filter: each of ``--pool`` instructions against all before it, the
   pure-Python LCS (before) against rapidfuzz's Indel distance (now), and whether every score is identical.

    python bench/dedup.py                          # 100,000 rows
    python bench/dedup.py --rows 100000 1000000    # and a million (the before variant takes 5-8 minutes)
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench.curation import dedup as columnar  # noqa: E402
from workbench.curation.dedup import normalise  # noqa: E402

BEFORE = "ba2ec59"  # main before the columnar dedup: datasketch MinHashLSH and a pure-Python ROUGE-L
VARIANTS = ("before", "columnar", "rensa")


# --- corpora ----------------------------------------------------------------------------------------
def corpus(rows: int, seed: int = 0) -> pl.DataFrame:
    """Rows of 45-55 words from a Zipf-like vocabulary of 20,000; 5% are near copies (2 words changed)."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, 20_001)
    words = rng.choice(20_000, size=(rows, 55), p=weights / weights.sum())
    lengths = rng.integers(45, 56, size=rows)
    copies = np.flatnonzero(rng.random(rows) < 0.05)
    copies = copies[copies > 0]
    sources = (rng.random(copies.size) * copies).astype(int)
    words[copies] = words[sources]
    lengths[copies] = lengths[sources]
    for column in range(2):
        words[copies, rng.integers(0, 45, size=copies.size)] = rng.integers(0, 20_000, size=copies.size) + column
    texts = [" ".join(f"w{w}" for w in row[:length]) for row, length in zip(words.tolist(), lengths, strict=True)]
    return pl.DataFrame({"sample_id": [str(i) for i in range(rows)], "response": texts})


def shingle_set(text: str, n: int = 3) -> set[str]:
    """The reference's shingles: Python strings, as the implementation before made them."""
    words = normalise(text).split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def planted_sample(rows: int = 20_000, planted: int = 2_000, seed: int = 7) -> pl.DataFrame:
    """Zipf texts; ``planted`` of them near copies of an earlier row, words replaced until the Jaccard
    similarity of their shingle sets falls to a target drawn from 0.5-1.0 (then the exact value holds)."""
    rng = random.Random(seed)
    frame = corpus(rows, seed=seed)
    texts = frame["response"].to_list()
    vocabulary = [f"w{i}" for i in range(20_000)]
    for index in rng.sample(range(1, rows), planted):
        source = texts[rng.randrange(index)]
        target, tokens = rng.uniform(0.5, 1.0), source.split()
        changed = list(tokens)
        while True:
            trial = list(changed)
            trial[rng.randrange(len(trial))] = rng.choice(vocabulary)
            if jaccard(shingle_set(source), shingle_set(" ".join(trial))) < target:
                break
            changed = trial
        texts[index] = " ".join(changed)
    return frame.with_columns(response=pl.Series(texts))


def reference(frame: pl.DataFrame, threshold: float) -> tuple[pl.DataFrame, np.ndarray]:
    """Every pair of rows with different normalised texts at Jaccard >= threshold (exactly), and the
    reference clusters (exact groups and those pairs, transitively) as each row's label."""
    texts = [normalise(text) for text in frame["response"]]
    sets = [shingle_set(text) for text in texts]
    members = pl.DataFrame(
        {"row": np.repeat(np.arange(len(sets)), [len(s) for s in sets]), "shingle": [x for s in sets for x in s]}
    )
    sizes = np.array([len(s) for s in sets])
    shared = (
        members.join(members, on="shingle", suffix="_b")
        .filter(pl.col("row") < pl.col("row_b"))
        .group_by("row", "row_b")
        .len()
    )
    a, b, common = (shared[c].to_numpy() for c in ("row", "row_b", "len"))
    similarity = common / (sizes[a] + sizes[b] - common)
    different = np.array([texts[i] != texts[j] for i, j in zip(a, b, strict=True)], dtype=bool)
    pairs = pl.DataFrame({"a": a, "b": b, "jaccard": similarity}).filter(
        (pl.Series(similarity) >= threshold) & pl.Series(different)
    )
    first = pl.DataFrame({"text": texts}).with_row_index("row").select(pl.col("row").min().over("text"))["row"]
    sources = np.concatenate([np.arange(len(texts)), pairs["a"].to_numpy()])
    targets = np.concatenate([first.to_numpy(), pairs["b"].to_numpy()])
    graph = coo_matrix((np.ones(sources.size, np.int8), (sources, targets)), shape=(len(texts), len(texts)))
    return pairs, connected_components(graph, directed=False)[1]


# --- the variants -------------------------------------------------------------------------------------
def before(module: str) -> types.ModuleType:
    """``workbench/<module>.py`` as it was at commit BEFORE, loaded from git (its relative imports made absolute)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE}:workbench/{module}.py"], capture_output=True, text=True, check=True
    ).stdout
    loaded = types.ModuleType(f"before_{module.replace('/', '_')}")
    exec(compile(source.replace("from ..", "from workbench."), f"{BEFORE}:{module}", "exec"), loaded.__dict__)
    return loaded


def rensa_band_keys(texts: pl.Series, plan: columnar.MinHashPlan) -> np.ndarray:
    """``band_keys`` with rensa's MinHash (``digest_matrix_from_flat_token_hashes``) for the signatures."""
    import rensa

    keys = np.empty((plan.bands, texts.len()), np.uint64)
    for start, stop in columnar._chunks(texts):
        hashes, counts = columnar.shingle_hashes(texts.slice(start, stop - start), plan.ngram)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint64)
        digests = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, plan.num_perm, 42)
        keys[:, start:stop] = columnar.bands_of(np.array(digests.to_rows(), dtype=np.uint32), plan)
    return keys


def run_variant(kind: str, frame: pl.DataFrame, threshold: float = 0.8, plan: columnar.MinHashPlan | None = None):
    if kind == "before":
        return before("curation/dedup").dedup(frame, threshold=threshold)
    plan = plan or columnar.MinHashPlan.for_threshold(threshold)
    texts = columnar.dedup_texts(frame, "response")
    keys_of = rensa_band_keys if kind == "rensa" else columnar.band_keys
    return columnar.mark_clusters(frame, columnar.find_clusters(texts, threshold, plan, keys_of), "score", False)


def available(kind: str) -> str | None:
    """Why a variant cannot run here, or None."""
    module = {"before": "datasketch", "rensa": "rensa"}.get(kind)
    try:
        if module:
            __import__(module)
    except ImportError:
        return f"skipped: {module} is not installed"
    return None


def _skip(kind: str) -> dict | None:
    reason = available(kind)
    return {"error": reason} if reason else None


def peak_mb() -> float:
    """This process's peak resident memory. On Linux from VmHWM, which starts afresh at exec (``ru_maxrss``
    carries over the peak of the parent that forked it)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def child(kind: str, path: str, out: str) -> None:
    """Run one variant in this fresh process; print time and peak memory as JSON, write the marks."""
    frame = pl.read_parquet(path)
    loaded_mb = peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    marked = run_variant(kind, frame)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    marked.select("dup_of").write_parquet(out)
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_mb(), "loaded_mb": loaded_mb}
    print(json.dumps(result))


def measure(kind: str, path: Path, folder: Path) -> dict:
    out = folder / f"{kind}.parquet"
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(out)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["dup_of"] = pl.read_parquet(out)["dup_of"]
    return result


def speed(sizes: list[int], variants: list[str]) -> None:
    print("1. speed and memory: rows of 45-55 words, 5% planted near copies; each variant in its own process")
    print(
        f"  {'rows':>9}  {'variant':8}  {'seconds':>8}  {'CPU s':>7}  {'rows/s':>8}  {'peak RSS':>9}  "
        f"{'(read corpus)':>13}"
    )
    for rows in sizes:
        folder = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
        try:
            path = folder / "corpus.parquet"
            subprocess.run(
                [sys.executable, __file__, "--corpus", str(rows), str(path)], check=True
            )  # keeps this one small
            results = {kind: _skip(kind) or measure(kind, path, folder) for kind in variants}
            for kind in variants:
                result = results[kind]
                if "error" in result:
                    print(f"  {rows:>9,}  {kind:8}  {result['error']}")
                    continue
                same = ""
                if "dup_of" in results.get("columnar", {}):
                    differ = (result["dup_of"].fill_null("") != results["columnar"]["dup_of"].fill_null("")).sum()
                    same = f"{result['dup_of'].is_not_null().sum():,} marked, {differ:,} rows marked unlike columnar"
                print(
                    f"  {rows:>9,}  {kind:8}  {result['seconds']:8.1f}  {result['cpu_seconds']:7.1f}  "
                    f"{rows / result['seconds']:8,.0f}  {result['peak_mb']:6,.0f} MB  "
                    f"{result['loaded_mb']:10,.0f} MB  {same}"
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def quality(threshold: float, variants: list[str]) -> None:
    sample = planted_sample()
    pairs, truth = reference(sample, threshold)
    print(
        f"2. recall and precision at threshold {threshold}: 20,000 rows, 2,000 planted near copies at Jaccard 0.5-1.0; "
        f"{pairs.height:,} reference pairs at >= {threshold} (exact)"
    )
    edges = [threshold + step * (1 - threshold) / 4 for step in range(5)]
    buckets = "  ".join(f"[{lo:.2f},{hi:.2f})" for lo, hi in zip(edges, edges[1:], strict=False))
    print(f"  {'variant':28}  {'recall':>7}  {'precision':>9}  rows in another cluster   recall by Jaccard {buckets}")
    old_banding = columnar.MinHashPlan(3, 128, 14, 9)
    plan = columnar.MinHashPlan.for_threshold(threshold)
    runs = [("before (datasketch, 14 x 9)", "before", None), ("columnar, bands 14 x 9", "columnar", old_banding)]
    runs += [(f"columnar, bands {plan.bands} x {plan.rows}", "columnar", plan)]
    if "rensa" in variants:
        runs.append((f"rensa, bands {plan.bands} x {plan.rows}", "rensa", plan))
    for label, kind, chosen in runs:
        if available(kind):
            print(f"  {label:28}  {available(kind)}")
            continue
        marked = run_variant(kind, sample, threshold, chosen)
        cluster = (
            marked.with_row_index("row")
            .select(pl.col("row").min().over(pl.col("dup_cluster").fill_null(pl.col("sample_id"))))["row"]
            .to_numpy()
        )
        found = cluster[pairs["a"].to_numpy()] == cluster[pairs["b"].to_numpy()]
        by_bucket = []
        similarity = pairs["jaccard"].to_numpy()
        for lo, hi in zip(edges, edges[1:], strict=False):
            inside = (similarity >= lo) & ((similarity < hi) | (hi >= 1))
            by_bucket.append(f"{found[inside].mean():13.1%}" if inside.any() else f"{'-':>13}")
        ids = {sample_id: row for row, sample_id in enumerate(sample["sample_id"])}
        marks = [(row, ids[keeper]) for row, keeper in enumerate(marked["dup_of"]) if keeper is not None]
        precise = sum(truth[row] == truth[keeper] for row, keeper in marks) / len(marks)
        canonical = pl.Series(truth).to_frame("t").with_row_index("row").select(pl.col("row").min().over("t"))["row"]
        other = int((canonical.to_numpy() != cluster).sum())
        print(f"  {label:28}  {found.mean():7.2%}  {precise:9.2%}  {other:>23,}   {'  '.join(by_bucket)}")


def rouge_pool(size: int) -> None:
    rng = random.Random(3)
    vocabulary = [f"word{i}" for i in range(600)]
    pool = [" ".join(rng.choices(vocabulary, k=rng.randint(8, 30))) for _ in range(size)]
    old, new = before("curation/similarity"), wb.curation.similarity
    results = {}
    for name, module in (("before", old), ("rapidfuzz", new)):
        module._cached_words.cache_clear()
        started = time.perf_counter()
        results[name] = [module.most_similar(text, pool[:index]) for index, text in enumerate(pool)]
        results[name + "_s"] = time.perf_counter() - started
    identical = results["before"] == results["rapidfuzz"]
    print(f"3. Self-Instruct's ROUGE-L pool filter: {size:,} instructions of 8-30 words, each against all before it")
    print(f"  pure-Python LCS (before)  {results['before_s']:7.2f} s")
    ratio = results["before_s"] / results["rapidfuzz_s"]
    print(
        f"  rapidfuzz Indel (now)     {results['rapidfuzz_s']:7.2f} s   {ratio:.0f}x faster; "
        f"every score and match identical: {identical}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--pool", type=int, default=1_000)
    parser.add_argument("--skip", nargs="+", choices=("speed", "quality", "rouge"), default=[])
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "PARQUET", "OUT"))
    parser.add_argument("--corpus", nargs=2, metavar=("ROWS", "PARQUET"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.corpus:
        corpus(int(args.corpus[0])).write_parquet(args.corpus[1])
        return
    if "speed" not in args.skip:
        speed(args.rows, args.variants)
    if "quality" not in args.skip:
        quality(args.threshold, args.variants)
    if "rouge" not in args.skip:
        rouge_pool(args.pool)


if __name__ == "__main__":
    main()
