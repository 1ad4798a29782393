"""The simulated model: a deterministic hashed bag-of-words sentence embedding.

It stands in for ``sentence-transformers/all-MiniLM-L6-v2``: same output size (384),
unit-length vectors, cosine similarity against route prototypes. It is deterministic,
so the same ticket always gets the same route, score and embedding hash.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (simulated)"
DIMENSIONS = 384

WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    """a about after again all am an and any are as at be been before being but by can
    could did do does doing for from had has have having he her here hi hello him his how
    i if in into is it its just me more my no not now of on once only or our out over
    please so some than thank thanks that the their them then there these they this to
    too up us very was we were what when where which while who why will with would you
    your yours""".split()  # noqa: SIM905 - a word list reads better as text
)
SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "ed", "es", "s")

ROUTE_KEYWORDS: dict[str, str] = {
    "billing": """bill billing charge charged twice double invoice invoices payment paid pay
        refund refunded credit card price pricing fee fees subscription renewal vat tax receipt
        amount money overcharged transaction debit coupon discount plan cost""",
    "delivery": """delivery deliver delivered parcel package shipping shipped shipment courier
        tracking track arrive arrived late lost damaged address order box carrier dispatch
        customs warehouse postman driver doorstep signed returned label""",
    "technical": """error bug crash crashes login log password reset app application website
        page loading slow api timeout sync update install browser code screen broken fails
        failing 500 404 2fa authentication server outage feature setting""",
    "cancellation": """cancel cancellation cancelled canceling unsubscribe terminate close
        closing account delete deletion stop renewal end contract downgrade membership
        leave quit auto-renew opt out remove""",
}


def stem(word: str) -> str:
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def features(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode("ascii")
    return [stem(word) for word in WORD.findall(folded) if word not in STOPWORDS]


def _slot(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    index = int.from_bytes(digest[:4], "big") % DIMENSIONS
    sign = 1.0 if digest[4] & 1 else -1.0
    return index, sign


def embed(text: str) -> list[float]:
    """A unit-length 384-dimension vector (all zeros when the text has no features)."""
    vector = [0.0] * DIMENSIONS
    counts: dict[str, int] = {}
    for feature in features(text):
        counts[feature] = counts.get(feature, 0) + 1
    for feature, count in counts.items():
        index, sign = _slot(feature)
        vector[index] += sign * (1.0 + math.log(count))
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


PROTOTYPES: dict[str, list[float]] = {route: embed(words) for route, words in ROUTE_KEYWORDS.items()}
ROUTES = tuple(PROTOTYPES)


def route(vector: list[float]) -> tuple[str, float]:
    """The closest route prototype and its cosine similarity (ties go to the first route)."""
    best, best_score = ROUTES[0], -2.0
    for name in ROUTES:
        score = cosine(vector, PROTOTYPES[name])
        if score > best_score:
            best, best_score = name, score
    return best, round(best_score, 4)


def embedding_hash(vector: list[float]) -> str:
    packed = struct.pack(f"<{DIMENSIONS}f", *vector)
    return hashlib.sha256(packed).hexdigest()[:16]
