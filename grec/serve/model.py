"""A loaded checkpoint as the server holds it: the ``Recommender``, its version, its catalog and title search."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.queries import RequestError


def served_version(path: Path, recommender) -> str:
    """``<folder>-<12 hex>``: the folder's name and a digest of what was loaded from it (every weight, the
    prompt settings, the SID map, the titles), so the version names the model in memory, whatever
    happens to the files afterwards, and a retrained checkpoint copied over the same folder gets a new one."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in recommender.model.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    sid_map = recommender.sid_map
    extras = [recommender.settings, sid_map.item_ids if sid_map else None, recommender.titles]
    digest.update(json.dumps(extras, sort_keys=True).encode())
    if sid_map is not None:
        digest.update(sid_map.codes.tobytes())
    return f"{path.name}-{digest.hexdigest()[:12]}"


class LoadedModel:
    """One checkpoint, loaded once and never changed: a reload builds a new one and swaps it in whole."""

    def __init__(self, path: str | Path, num_beams: int = 20, device: str = "cpu"):
        from grec.recommender import Recommender

        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise GrecError(f"{path}: no such checkpoint folder")
        self.recommender = Recommender.from_pretrained(self.path, num_beams=num_beams, device=device)
        self.version = served_version(self.path, self.recommender)
        self.style = self.recommender.settings["style"]
        self.catalog = self.recommender.catalog
        self.titles = self.recommender.titles or {}
        self._search = sorted((str(title).lower(), item) for item, title in self.titles.items())

    def item(self, item_id: str) -> dict:
        if item_id not in self.catalog:
            raise RequestError("item_id", f"unknown item id {item_id!r}", status=404)
        return {"item_id": item_id, "title": self.titles.get(item_id)}

    def search(self, query: str, limit: int) -> list[dict]:
        """Items whose title contains ``query`` (any case), in title order."""
        query = query.lower().strip()
        found = [item for title, item in self._search if query in title] if query else []
        return [self.item(item) for item in found[:limit]]
