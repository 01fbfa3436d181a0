"""Gallery search: SearchIndex against faiss-cpu IndexFlatIP, in the same run.

N random unit templates (default 1,000,000 × 128), top-5, query batches of 1 and 64. Also
measures how long one pass reading the whole matrix takes (the floor for a single query),
the memory each index holds, and whether every top-5 equals a plain brute force
(``queries @ templates.T`` then a full sort).

Targets (issue 6): batch 1 within 1.5× the memory-read time; batch 64 at least 3× faster
than faiss flat; exact results. The last line printed is one JSON object.

    python benchmarks/gallery_search.py            # 1M × 128 (needs ~2 GB RAM, faiss-cpu)
    python benchmarks/gallery_search.py --n 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from siamese_edge.runtime.search_index import SearchIndex


def progress(*parts: object) -> None:
    """Progress goes to stderr: stdout carries only the final JSON line."""
    print(*parts, file=sys.stderr)


def best_ms(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def read_ms(matrix: np.ndarray, repeats: int) -> float:
    """The fastest full read of ``matrix`` we know: a max-reduction, on 1 and on all cores."""
    words = matrix.reshape(-1).view(np.uint32)
    pool = ThreadPoolExecutor(os.cpu_count() or 1)
    parts = np.array_split(words, os.cpu_count() or 1)
    single = best_ms(lambda: words.max(), repeats)
    threaded = best_ms(lambda: list(pool.map(np.max, parts)), repeats)
    pool.shutdown()
    return min(single, threaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="templates")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-queries", type=int, default=64,
                        help="queries compared with brute force for exactness")
    parser.add_argument("--no-faiss", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    base_rss = rss_mb()
    templates = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    queries = rng.standard_normal((64, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids = np.arange(args.n, dtype=np.int64)

    before = rss_mb()
    index = SearchIndex(args.dim)
    index.add(templates, ids, ids // 5)
    index_mb = index.nbytes / 2**20
    progress(f"templates: {args.n} x {args.dim} float32 = {templates.nbytes / 2**20:.0f} MiB; "
             f"SearchIndex holds {index_mb:.0f} MiB (RSS +{rss_mb() - before:.0f} MiB)")

    result: dict = {"n": args.n, "dim": args.dim, "k": args.k}
    result["read_ms"] = read_ms(index._columns[:, :args.n], args.repeats)
    result["ms_batch1"] = best_ms(lambda: index.search(queries[:1], args.k), args.repeats)
    result["ms_batch64"] = best_ms(lambda: index.search(queries, args.k),
                                   max(1, args.repeats // 2))

    # Exactness: every top-k equals a full brute-force ranking.
    check = queries[:args.check_queries]
    brute = check @ templates.T
    expected = np.argsort(-brute, axis=1, kind="stable")[:, :args.k]
    got = np.concatenate([index.search(check[:1], args.k).ids,
                          index.search(check, args.k).ids[1:]])
    result["exact"] = bool(np.array_equal(got, expected))
    del brute

    if not args.no_faiss:
        try:
            import faiss
        except ImportError:
            progress("faiss not installed (pip install faiss-cpu): skipping the comparison")
        else:
            before = rss_mb()
            flat = faiss.IndexFlatIP(args.dim)
            flat.add(templates)
            result["faiss_mb"] = round(rss_mb() - before, 1)
            result["faiss_ms_batch1"] = best_ms(lambda: flat.search(queries[:1], args.k),
                                                args.repeats)
            result["faiss_ms_batch64"] = best_ms(lambda: flat.search(queries, args.k),
                                                 max(1, args.repeats // 2))
            _, faiss_ids = flat.search(check, args.k)
            result["faiss_exact"] = bool(np.array_equal(faiss_ids, expected))
    result["index_mb"] = round(index_mb, 1)
    result["process_rss_mb"] = round(rss_mb() - base_rss, 1)
    result["batch1_over_read"] = round(result["ms_batch1"] / result["read_ms"], 2)
    if "faiss_ms_batch64" in result:
        result["batch64_speedup_vs_faiss"] = round(
            result["faiss_ms_batch64"] / result["ms_batch64"], 2)
    result["threads"] = os.cpu_count()
    for key, value in list(result.items()):
        if isinstance(value, float):
            result[key] = round(value, 2)
    progress(f"read {result['read_ms']:.1f} ms | batch 1: {result['ms_batch1']:.1f} ms "
             f"({result['batch1_over_read']}x read) | batch 64: {result['ms_batch64']:.1f} ms"
             + (f" | faiss flat: {result['faiss_ms_batch1']:.1f} / "
                f"{result['faiss_ms_batch64']:.1f} ms ({result['batch64_speedup_vs_faiss']}x)"
                if "faiss_ms_batch64" in result else "")
             + f" | exact {result['exact']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
