"""The catalog as lookup tables for fixed-depth semantic IDs, built from the sorted code array.

Level t of the tree has one node per distinct prefix of t codes (node 0 of level 0 is the root).
``next_node[t][n, c]`` is the level-(t+1) node reached from node n by code c, or -1 when no item
continues that way; at the last level it holds the item's row instead. Tables are dense over the
level's codes (rows x codebook), so one step for all beams is a single gather, no Python per beam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from grec.base.sid import SidMap, SidTokens


@dataclass
class SidIndex:
    """Per-level transition tables and token ids of a SID catalog."""

    next_node: list[torch.Tensor]  # level t: (nodes_t, size_t) int32, -1 = no item this way
    level_tokens: list[torch.Tensor]  # level t: (size_t,) token id of each code (-1 for unused codes)
    item_ids: list[str]
    item_node: list[torch.Tensor]  # level t >= 1: (items,) the level-t node on each item's path
    subtree_size: list[torch.Tensor]  # level t >= 1: (nodes_t,) items below each node

    @property
    def levels(self) -> int:
        return len(self.next_node)

    @classmethod
    def build(cls, sid_map: SidMap, tokens: SidTokens, device: str | torch.device = "cpu") -> SidIndex:
        """Tables from the map's codes: sort, then number the distinct prefixes level by level."""
        codes = sid_map.codes
        order = np.lexsort(codes.T[::-1])
        codes = codes[order]
        sizes = sid_map.level_sizes()
        node = np.zeros(len(codes), dtype=np.int64)  # each item's node at the current level
        tables, item_node, subtree = [], [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
        for level in range(sid_map.levels):
            table = np.full((int(node.max()) + 1, sizes[level]), -1, dtype=np.int32)
            if level + 1 < sid_map.levels:
                prefix_change = np.r_[True, (codes[1:, : level + 1] != codes[:-1, : level + 1]).any(1)]
                child = np.cumsum(prefix_change) - 1
                path = np.empty(len(codes), dtype=np.int64)
                path[order] = child
                item_node.append(torch.from_numpy(path).to(device))
                subtree.append(torch.from_numpy(np.bincount(child)).to(device))
            else:
                child = order  # leaves point at the item's row in sid_map.item_ids
            table[node, codes[:, level]] = child
            tables.append(torch.from_numpy(table).to(device))
            node = child
        level_tokens = [torch.from_numpy(ids).to(device) for ids in tokens.level_ids]
        return cls(
            next_node=tables,
            level_tokens=level_tokens,
            item_ids=list(sid_map.item_ids),
            item_node=item_node,
            subtree_size=subtree,
        )

    def dead_nodes(self, level: int, excluded: list[list[int]]) -> torch.Tensor:
        """(users, nodes_level) True where every item below the node is excluded for that user."""
        sizes = self.subtree_size[level]
        dead = torch.zeros(len(excluded), len(sizes), dtype=torch.bool, device=sizes.device)
        for user, rows in enumerate(excluded):
            if rows:
                nodes, counts = self.item_node[level][torch.as_tensor(rows, device=sizes.device)].unique(
                    return_counts=True
                )
                dead[user, nodes] = counts == sizes[nodes]
        return dead

    def nbytes(self) -> int:
        tensors = [*self.next_node, *self.level_tokens, *self.item_node, *self.subtree_size]
        return sum(t.element_size() * t.nelement() for t in tensors)
