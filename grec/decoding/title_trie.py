"""Title mode (BIGRec): a trie over tokenised item titles, for constrained title generation.

Each item's output is its quoted title (as ``grec records --style title`` writes it) followed by
end-of-sequence. Items that share a title share a path; the leaf lists all of them. The trie is a
dict from token-id prefix to the sorted next tokens, built once; lookups never scan the catalog.
"""

from __future__ import annotations

from collections import defaultdict

from grec.base.templates import quote


def title_outputs(tokenizer, titles: dict[str, str]) -> list[list[int]]:
    """Each item's output as training saw it: its quoted title's token ids (EOS not included)."""
    return tokenizer([quote(t) for t in titles.values()], add_special_tokens=False)["input_ids"]


def longest_output(outputs: list[list[int]]) -> int:
    """Tokens of the longest output, EOS included: what a prompt must leave room for."""
    return max(map(len, outputs), default=0) + 1


class TitleTrie:
    """Token-id trie over ``quote(title) + eos`` for every item; works with any tokenizer."""

    def __init__(self, tokenizer, titles: dict[str, str]):
        self.eos = tokenizer.eos_token_id
        children: dict[tuple, set[int]] = defaultdict(set)
        self.items_of: dict[tuple, list[str]] = defaultdict(list)
        ids = title_outputs(tokenizer, titles)
        for item, tokens in zip(titles, ids):
            path = tuple(tokens)
            self.items_of[path].append(item)
            for depth in range(len(path)):
                children[path[:depth]].add(path[depth])
            children[path].add(self.eos)
        self.children = {prefix: sorted(nxt) for prefix, nxt in children.items()}
        self.path_of = {item: tuple(tokens) for item, tokens in zip(titles, ids)}
        self.longest = longest_output(ids)

    def dead_ends(self, excluded: set[str]) -> set[tuple]:
        """Prefixes (a complete title is ``path + (eos,)``) that lead only to titles all of whose items
        are ``excluded``: a search that never enters them never ends on an excluded item."""
        dead: set[tuple] = set()
        for item in excluded:
            path = self.path_of.get(item)
            if path is None or not all(owner in excluded for owner in self.items_of[path]):
                continue
            dead.add(path + (self.eos,))
            for depth in range(len(path), 0, -1):  # walk up while every way on from a node is dead
                node = path[:depth]
                if not all(node + (t,) in dead for t in self.children[node]):
                    break
                dead.add(node)
        return dead

    def allowed(self, prefix: tuple) -> list[int]:
        """Next tokens that keep ``prefix`` on a catalog title (just EOS once a title is complete and nothing longer fits)."""
        return self.children.get(prefix, [self.eos])

    def items(self, tokens: list[int]) -> list[str]:
        """Items whose title is exactly ``tokens`` (EOS and padding after it removed)."""
        if self.eos in tokens:
            tokens = tokens[: tokens.index(self.eos)]
        return self.items_of.get(tuple(tokens), [])


class TitlePrefixConstraint:
    """``prefix_allowed_tokens_fn`` over a TitleTrie; the generated part starts after ``prompt_length`` tokens.

    ``excluded``: per record, items the search must not end on (the user's history); their titles
    are closed inside the search, so every returned title is an item the user may get.
    """

    def __init__(self, trie: TitleTrie, prompt_length: int, excluded: list[set[str]] | None = None):
        self.trie, self.prompt_length = trie, prompt_length
        self.dead = [trie.dead_ends(items) for items in excluded] if excluded is not None else None

    def __call__(self, batch_id: int, input_ids) -> list[int]:
        generated = tuple(input_ids[self.prompt_length :].tolist())
        if self.trie.eos in generated:
            return [self.trie.eos]
        allowed = self.trie.allowed(generated)
        if self.dead is not None and self.dead[batch_id]:
            dead = self.dead[batch_id]
            allowed = [t for t in allowed if generated + (t,) not in dead] or [self.trie.eos]
        return allowed


class AssistantScores:
    """D3's text-free assistant (Bao et al. 2024) as a logits processor for the title beam search.

    Each record has a collaborative score per item in [0, 1] (``cf``: records x items, columns in
    ``item_ids`` order). A trie node's score is the best item score below it; each step adds
    ``weight * (log s(child) - log s(node))`` to the token that leads from ``node`` to ``child``,
    so the bonuses of a whole title add up to ``weight * log s(item)`` (the length of the title
    does not matter) while the search is steered towards well-scored items from its first tokens.
    """

    def __init__(self, trie: TitleTrie, item_ids: list[str], cf, weight: float, prompt_length: int, beams: int):
        import numpy as np

        self.trie, self.weight, self.prompt_length, self.beams = trie, weight, prompt_length, beams
        self.log = np.log(np.maximum(np.asarray(cf, dtype=np.float64), 1e-6))  # records x items
        column = {item: k for k, item in enumerate(item_ids)}
        below: dict[tuple, list[int]] = defaultdict(list)
        for item, path in trie.path_of.items():
            for depth in range(len(path) + 1):
                below[path[:depth]].append(column[item])
            below[path + (trie.eos,)].append(column[item])
        self.below = {node: np.array(cols) for node, cols in below.items()}

    def node_score(self, record: int, node: tuple) -> float:
        cols = self.below.get(node)
        return float(self.log[record, cols].max()) if cols is not None else 0.0

    def __call__(self, input_ids, scores):
        for row in range(input_ids.shape[0]):
            record = row // self.beams
            generated = tuple(input_ids[row, self.prompt_length :].tolist())
            if self.trie.eos in generated:
                continue
            here = self.node_score(record, generated)
            for token in self.trie.allowed(generated):
                scores[row, token] += self.weight * (self.node_score(record, generated + (token,)) - here)
        return scores
