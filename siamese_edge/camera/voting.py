"""Temporal decisions: accept an identity only when k of the last n frames agree.

One noisy frame must not open a door. Each frame contributes the set of identities it
matched (several people may be in view); an identity is accepted while it appears in at
least ``k`` of the last ``n`` frames, frames without a match included.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable

from siamese_edge.errors import InvalidInputError


class KOfNVoter:
    """k-of-n voting over a sliding window of frames.

    Example:
        >>> voter = KOfNVoter(2, 3)
        >>> voter.update({"ann"}), voter.update({"ann"}), voter.update(set())
        (set(), {'ann'}, {'ann'})
    """

    def __init__(self, k: int, n: int) -> None:
        if not 1 <= k <= n:
            raise InvalidInputError(f"--vote {k}/{n}: need 1 <= k <= n")
        self.k, self.n = k, n
        self._window: deque[frozenset[str]] = deque(maxlen=n)
        self._counts: Counter[str] = Counter()

    @classmethod
    def parse(cls, text: str) -> KOfNVoter:
        """``"k/n"`` (e.g. ``3/5``) → voter; ``"1/1"`` decides on every frame alone."""
        parts = str(text).strip().split("/")
        # isdecimal, not isdigit: "²".isdigit() is True but int("²") raises
        if len(parts) != 2 or not all(p.strip().isdecimal() for p in parts):
            raise InvalidInputError(f"--vote {text}: expected k/n, e.g. 3/5")
        return cls(int(parts[0]), int(parts[1]))

    def update(self, identities: Iterable[str]) -> set[str]:
        """Add one frame's matched identities; return those accepted now."""
        frame = frozenset(identities)
        if len(self._window) == self.n:
            self._counts.subtract(self._window[0])
        self._window.append(frame)
        self._counts.update(frame)
        return {name for name, count in self._counts.items() if count >= self.k}

    def votes(self, identity: str) -> int:
        """Frames among the last n that matched ``identity``."""
        return max(0, self._counts[identity])

    def reset(self) -> None:
        self._window.clear()
        self._counts.clear()
