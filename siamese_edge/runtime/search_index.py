"""Exact 1:N search over gallery templates, held in memory as one contiguous matrix.

:class:`SearchIndex` keeps every template as a column of one ``float32`` matrix of shape
``(D, capacity)`` (column-major on purpose: a single query is then a streaming
matrix-vector product that runs at memory speed, and a batch is one GEMM per chunk). It is
loaded once and updated incrementally: :meth:`~SearchIndex.add` appends columns (amortised
doubling), :meth:`~SearchIndex.remove` moves the last columns into the holes.

Search is exact. Scores are computed chunk by chunk and each query keeps a running k-th best
score; only the few templates that beat it reach a partition, instead of a full
``argpartition`` over every score. Each template carries an integer ``label`` (its identity)
so that identity-level rankings (see :mod:`siamese_edge.runtime.matching`) can be derived
exactly from template-level results.

:class:`FaissFlatIndex` answers the same interface with faiss (imported lazily), for
galleries where a faiss index (or a later approximate one) is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siamese_edge.errors import InvalidInputError

#: templates scored per step; (chunk, batch) float32 scores stay in the CPU caches.
DEFAULT_CHUNK = 8192
#: templates per step for a single query (a matrix-vector product per step).
_VECTOR_CHUNK = 65536
#: the first chunk is small so that a useful k-th best threshold exists early.
_FIRST_CHUNK = 4096
#: templates scored at a time in float64 by ``scores`` (bounds the float64 temporary)
_EXACT_CHUNK = 16384


@dataclass(frozen=True)
class TemplateHits:
    """Template-level top-k, best first; rows past the index size hold ``-inf`` / ``-1``.

    Attributes:
        scores: float32 ``(Q, k)`` inner products.
        ids: int64 ``(Q, k)`` template ids.
        labels: int64 ``(Q, k)`` labels (identities) of those templates.
    """

    scores: np.ndarray
    ids: np.ndarray
    labels: np.ndarray


class SearchIndex:
    """Exact inner-product search over labelled vectors.

    Args:
        dim: vector length.
        chunk: templates scored per step (memory use per query batch: ``chunk × Q × 4`` bytes).

    Example:
        >>> index = SearchIndex(2)
        >>> index.add(np.eye(2, dtype=np.float32), ids=[10, 11], labels=[1, 2])
        >>> index.search(np.array([[0.0, 1.0]], np.float32), k=1).ids.tolist()
        [[11]]
    """

    def __init__(self, dim: int, chunk: int = DEFAULT_CHUNK) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.dim = int(dim)
        self.chunk = int(chunk)
        self._columns = np.empty((self.dim, 0), np.float32)
        self._ids = np.empty(0, np.int64)
        self._labels = np.empty(0, np.int64)
        self._size = 0
        self._position: dict[int, int] = {}

    # -- contents -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._size

    @property
    def ids(self) -> np.ndarray:
        return self._ids[:self._size]

    @property
    def labels(self) -> np.ndarray:
        return self._labels[:self._size]

    @property
    def vectors(self) -> np.ndarray:
        """``(N, D)`` view of the stored vectors (not contiguous; copy before heavy use)."""
        return self._columns[:, :self._size].T

    @property
    def nbytes(self) -> int:
        """Memory held by the index (capacity included)."""
        return int(self._columns.nbytes + self._ids.nbytes + self._labels.nbytes)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._position

    def add(self, vectors: np.ndarray, ids, labels) -> None:
        """Append vectors with their unique template ``ids`` and ``labels``."""
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        ids = np.asarray(ids, np.int64).reshape(-1)
        labels = np.broadcast_to(np.asarray(labels, np.int64), ids.shape)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(ids):
            raise InvalidInputError(f"expected vectors of shape ({len(ids)}, {self.dim}), got "
                                    f"{vectors.shape}")
        if not np.all(np.isfinite(vectors)):
            raise InvalidInputError("vectors contain NaN or inf")
        if len(set(ids.tolist())) != len(ids) or any(int(i) in self._position for i in ids):
            raise InvalidInputError("template ids must be unique")
        n = len(ids)
        self._reserve(self._size + n)
        end = self._size + n
        self._columns[:, self._size:end] = vectors.T
        self._ids[self._size:end] = ids
        self._labels[self._size:end] = labels
        for offset, template_id in enumerate(ids.tolist()):
            self._position[template_id] = self._size + offset
        self._size = end

    def remove(self, ids) -> int:
        """Remove templates by id (unknown ids are ignored); returns how many went."""
        removed = 0
        for template_id in np.asarray(ids, np.int64).reshape(-1).tolist():
            position = self._position.pop(template_id, None)
            if position is None:
                continue
            last = self._size - 1
            if position != last:  # fill the hole with the last column
                self._columns[:, position] = self._columns[:, last]
                self._ids[position] = self._ids[last]
                self._labels[position] = self._labels[last]
                self._position[int(self._ids[position])] = position
            self._size = last
            removed += 1
        return removed

    def remove_label(self, label: int) -> int:
        """Remove every template of ``label``; returns how many went."""
        return self.remove(self.ids[self.labels == label].copy())

    def _reserve(self, size: int) -> None:
        capacity = self._columns.shape[1]
        if size <= capacity:
            return
        capacity = max(size, 2 * capacity, 1024)
        columns = np.empty((self.dim, capacity), np.float32)
        columns[:, :self._size] = self._columns[:, :self._size]
        ids = np.empty(capacity, np.int64)
        ids[:self._size] = self.ids
        labels = np.empty(capacity, np.int64)
        labels[:self._size] = self.labels
        self._columns, self._ids, self._labels = columns, ids, labels

    # -- searching ------------------------------------------------------------------------
    def scores(self, queries: np.ndarray) -> np.ndarray:
        """``(Q, N)`` inner products with every template, in storage order (exact, as
        :func:`exact_scores`)."""
        queries = self._check_queries(queries)
        out = np.empty((len(queries), self._size), np.float32)
        for start in range(0, self._size, _EXACT_CHUNK):
            stop = min(start + _EXACT_CHUNK, self._size)
            out[:, start:stop] = exact_scores(queries, self._columns[:, start:stop])
        return out

    def scores_of(self, queries: np.ndarray, label: int) -> np.ndarray:
        """``(Q, t)`` inner products with the ``t`` templates of ``label`` (exact)."""
        queries = self._check_queries(queries)
        columns = np.flatnonzero(self.labels == label)
        return exact_scores(queries, self._columns[:, columns])

    def search(self, queries: np.ndarray, k: int) -> TemplateHits:
        """The ``k`` best templates per query, exactly, best first."""
        queries = self._check_queries(queries)
        k = max(0, int(k))  # a negative k asks for nothing (np.full would raise on it)
        return self._hits(queries, self._top_rows(queries, k), k)

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidInputError(f"expected queries of shape (Q, {self.dim}), got "
                                    f"{queries.shape}")
        if not np.all(np.isfinite(queries)):
            raise InvalidInputError("queries contain NaN or inf")
        return np.ascontiguousarray(queries)

    def _top_rows(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        """Column positions of each query's top ``k`` (unsorted)."""
        n_queries, n = len(queries), self._size
        k = min(k, n)
        if k == 0:
            return [np.empty(0, np.int64) for _ in range(n_queries)]
        best_scores = np.full((n_queries, k), -np.inf, np.float32)
        best_rows = np.full((n_queries, k), -1, np.int64)
        threshold = np.full(n_queries, -np.inf, np.float32)
        transposed = np.ascontiguousarray(queries.T)
        # One query streams through big chunks (few calls); a batch uses cache-sized ones.
        chunk = self.chunk if n_queries > 1 else max(self.chunk, _VECTOR_CHUNK)
        buffer = np.empty((min(chunk, n), n_queries), np.float32)
        start, step = 0, min(_FIRST_CHUNK, chunk)
        while start < n:
            stop = min(start + step, n)
            block = self._columns[:, start:stop]
            if n_queries == 1:  # a streaming matrix-vector product, at memory speed
                scores = (queries[0] @ block)[:, None]
            else:
                scores = np.matmul(block.T, transposed, out=buffer[:stop - start])
            self._merge(scores, start, threshold, best_scores, best_rows)
            start, step = stop, chunk
        return list(best_rows)

    @staticmethod
    def _merge(scores: np.ndarray, start: int, threshold: np.ndarray,
               best_scores: np.ndarray, best_rows: np.ndarray) -> None:
        """Fold a chunk's ``(c, Q)`` scores into each query's running top-k, in place.

        One flat comparison against the lowest running threshold finds the few candidates
        (a superset); they are filtered per query, pooled next to the current best, and one
        ``argpartition`` per pool row keeps the ``k`` best. Vectorised over queries.
        """
        n_queries, k = best_scores.shape
        if np.isneginf(threshold).any():  # some query has fewer than k so far: take its best k
            top = min(k, len(scores))
            rows = np.argpartition(-scores, top - 1, axis=0)[:top] if top < len(scores) \
                else np.broadcast_to(np.arange(len(scores))[:, None], scores.shape)
            group = np.repeat(np.arange(n_queries)[None, :], top, axis=0).T.reshape(-1)
            rows = np.ascontiguousarray(rows.T).reshape(-1)
            values = scores[rows, group]
        else:
            flat = scores.reshape(-1)
            hits = np.flatnonzero(flat > threshold.min())
            if not hits.size:
                return
            values = flat[hits]
            group = hits % n_queries
            keep = values > threshold[group]
            if not keep.any():
                return
            hits, values, group = hits[keep], values[keep], group[keep]
            order = np.argsort(group, kind="stable")
            rows, values, group = hits[order] // n_queries, values[order], group[order]
        active, counts = np.unique(group, return_counts=True)
        pool_scores = np.full((active.size, k + int(counts.max())), -np.inf, np.float32)
        pool_rows = np.full(pool_scores.shape, -1, np.int64)
        pool_scores[:, :k] = best_scores[active]
        pool_rows[:, :k] = best_rows[active]
        position = np.repeat(np.arange(active.size), counts)
        slot = k + np.arange(len(group)) - np.repeat(np.cumsum(counts) - counts, counts)
        pool_scores[position, slot] = values
        pool_rows[position, slot] = rows + start
        keep = np.argpartition(-pool_scores, k - 1, axis=1)[:, :k]
        kept_scores = np.take_along_axis(pool_scores, keep, 1)
        kept_rows = np.take_along_axis(pool_rows, keep, 1)
        best_scores[active], best_rows[active] = kept_scores, kept_rows
        threshold[active] = np.where((kept_rows >= 0).all(axis=1), kept_scores.min(axis=1),
                                     -np.inf)

    def _hits(self, queries: np.ndarray, rows: list[np.ndarray], k: int) -> TemplateHits:
        n_queries = len(queries)
        scores = np.full((n_queries, k), -np.inf, np.float32)
        ids = np.full((n_queries, k), -1, np.int64)
        labels = np.full((n_queries, k), -1, np.int64)
        for j, row in enumerate(rows):
            row = row[row >= 0]
            if not len(row):
                continue
            # The few winners' exact scores: what 1:1, 1:N and any batch report alike
            values = exact_scores(queries[j:j + 1], self._columns[:, row])[0]
            order = np.lexsort((self._ids[row], -values))
            row, values = row[order], values[order]
            scores[j, :len(row)] = values
            ids[j, :len(row)] = self._ids[row]
            labels[j, :len(row)] = self._labels[row]
        return TemplateHits(scores, ids, labels)


def exact_scores(queries: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``(Q, d) @ (d, t)`` as float32 scores that do not depend on the batch or the kernel.

    A float32 matrix product rounds differently with the shape of the call (BLAS picks other
    kernels and summation orders), so one probe scored alone, in a batch, against one
    identity or against the whole gallery got scores a few ulps apart, and a threshold
    between them made 1:1 and 1:N disagree. Products of float32 values are exact in float64
    and their float64 sum is within ~1e-16 of the true value, so rounding it to float32
    gives the correctly rounded score whatever the summation order (except for sums within
    1e-16 of a float32 rounding boundary, about one in 10^9).
    """
    return (np.asarray(queries, np.float64) @ np.asarray(columns, np.float64)).astype(
        np.float32)


def exact_row_scores(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``first`` against row ``i`` of ``second``, scored as
    :func:`exact_scores` scores: float64 products rounded to float32."""
    return np.einsum("ij,ij->i", np.asarray(first, np.float64),
                     np.asarray(second, np.float64)).astype(np.float32)


class FaissFlatIndex(SearchIndex):
    """:class:`SearchIndex` whose template search runs in a faiss ``IndexFlatIP``.

    faiss is imported on first search (``pip install faiss-cpu``); the faiss index is rebuilt
    lazily after changes. Results are exact like the base class (faiss flat is brute force).
    """

    def __init__(self, dim: int, chunk: int = DEFAULT_CHUNK) -> None:
        super().__init__(dim, chunk)
        self._faiss_index = None

    def add(self, vectors: np.ndarray, ids, labels) -> None:
        super().add(vectors, ids, labels)
        self._faiss_index = None

    def remove(self, ids) -> int:
        removed = super().remove(ids)
        if removed:
            self._faiss_index = None
        return removed

    def _top_rows(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        try:
            import faiss
        except ImportError:
            from siamese_edge.errors import MissingDependencyError

            raise MissingDependencyError("the faiss index needs faiss: pip install faiss-cpu") \
                from None
        if self._faiss_index is None:
            self._faiss_index = faiss.IndexFlatIP(self.dim)
            if self._size:
                self._faiss_index.add(np.ascontiguousarray(self.vectors))
        k = min(k, self._size)
        if k == 0:
            return [np.empty(0, np.int64) for _ in range(len(queries))]
        _, rows = self._faiss_index.search(queries, k)
        return list(rows.astype(np.int64))
