"""The catalog's identity: a fingerprint of its item ids and texts, recorded where item ids are given
meaning (a SID folder), so that files made for one catalog are not used with another."""

from __future__ import annotations

import hashlib


def fingerprint(item_ids: list[str], texts: list[str]) -> str:
    """A hash of the (item id, text) pairs in order: equal catalogs, equal fingerprints."""
    digest = hashlib.sha256()
    for item, text in zip(item_ids, texts):
        digest.update(f"{item}\0{text}\0".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]
