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
        self.longest = longest_output(ids)

    def allowed(self, prefix: tuple) -> list[int]:
        """Next tokens that keep ``prefix`` on a catalog title (just EOS once a title is complete and nothing longer fits)."""
        return self.children.get(prefix, [self.eos])

    def items(self, tokens: list[int]) -> list[str]:
        """Items whose title is exactly ``tokens`` (EOS and padding after it removed)."""
        if self.eos in tokens:
            tokens = tokens[: tokens.index(self.eos)]
        return self.items_of.get(tuple(tokens), [])


class TitlePrefixConstraint:
    """``prefix_allowed_tokens_fn`` over a TitleTrie; the generated part starts after ``prompt_length`` tokens."""

    def __init__(self, trie: TitleTrie, prompt_length: int):
        self.trie, self.prompt_length = trie, prompt_length

    def __call__(self, batch_id: int, input_ids) -> list[int]:
        generated = tuple(input_ids[self.prompt_length :].tolist())
        if self.trie.eos in generated:
            return [self.trie.eos]
        return self.trie.allowed(generated)
