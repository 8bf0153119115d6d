"""The n-gram baseline for the poem model's perplexity: an interpolated Kneser-Ney character model.

    python benchmarks/ngram.py [--orders 2,3,4,5]

Fitted on exactly the training stanzas of the shipped five-character quatrain model (its seed's split, with the
regulated halves and the stanzas of longer poems) and scored on the same 1,650 held-out quatrains, through the
model's own vocabulary (a character it lacks is the unknown mark, as the VAE sees it): the perplexity per
character is comparable with the VAE's exp(-ELBO per character). Each poem starts from padding; its 20
characters are predicted, as the VAE's are. The discount per order is Ney's D = n1 / (n1 + 2 n2), and the
lowest order is interpolated with the uniform distribution over the vocabulary, so no character has zero
probability; the script checks that its distributions sum to one.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter, defaultdict

import vaekit
from common import machine, write_result

BOS = "<s>"


class KneserNey:
    """Interpolated Kneser-Ney over characters (Chen and Goodman 1998, one discount per order)."""

    def __init__(self, texts: list[list[str]], order: int, vocabulary: list[str]):
        self.order, self.vocabulary = order, vocabulary
        top: Counter[tuple[str, ...]] = Counter()
        for text in texts:
            padded = [BOS] * (order - 1) + text
            for i in range(order - 1, len(padded)):
                top[tuple(padded[i - order + 1:i + 1])] += 1
        # counts[n]: n-gram counts of order n; raw for the top order, continuation counts (distinct left
        # extensions) below it
        self.counts: dict[int, Counter[tuple[str, ...]]] = {order: top}
        for n in range(order - 1, 0, -1):
            self.counts[n] = Counter(gram[1:] for gram in self.counts[n + 1])
        self.discount, self.context_total, self.context_types = {}, {}, {}
        for n, counts in self.counts.items():
            n1 = sum(1 for c in counts.values() if c == 1)
            n2 = sum(1 for c in counts.values() if c == 2)
            self.discount[n] = n1 / (n1 + 2 * n2) if n1 else 0.5
            total: defaultdict[tuple[str, ...], int] = defaultdict(int)
            types: defaultdict[tuple[str, ...], int] = defaultdict(int)
            for gram, c in counts.items():
                total[gram[:-1]] += c
                types[gram[:-1]] += 1
            self.context_total[n], self.context_types[n] = total, types

    def prob(self, context: tuple[str, ...], char: str) -> float:
        """P(char | the last order-1 characters of context)."""
        p = 1 / len(self.vocabulary)
        for n in range(1, self.order + 1):
            h = context[len(context) - (n - 1):] if n > 1 else ()
            total = self.context_total[n].get(h, 0)
            if total == 0:
                continue  # an unseen context: the lower order stands alone
            d = self.discount[n]
            p = (max(self.counts[n].get(h + (char,), 0) - d, 0) + d * self.context_types[n][h] * p) / total
        return p


def perplexity(lm: KneserNey, held: list[list[str]]) -> float:
    """exp of the mean negative log-probability per character over the held-out texts."""
    nll = 0.0
    for text in held:
        padded = [BOS] * (lm.order - 1) + text
        nll -= sum(math.log(lm.prob(tuple(padded[:i]), padded[i])) for i in range(lm.order - 1, len(padded)))
    return math.exp(nll / sum(len(t) for t in held))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", default="2,3,4,5")
    args = parser.parse_args()
    from vaekit.data.poetry import UNK
    from vaekit.poetry.task import split_items

    model = vaekit.load("quatrain")
    train_items, held_items = split_items(model.run_config)
    known = set(model.vocab.chars)
    train, held = ([[c if c in known else UNK for c in t] for t, _ in items] for items in (train_items, held_items))
    rows = []
    for order in (int(o) for o in args.orders.split(",")):
        lm = KneserNey(train, order, model.vocab.chars)
        rng = random.Random(0)
        for text in rng.sample(held, 5):  # every conditional distribution sums to one over the vocabulary
            context = tuple([BOS] * (order - 1) + text[:rng.randrange(len(text))])
            total = sum(lm.prob(context, c) for c in model.vocab.chars)
            assert abs(total - 1) < 1e-9, total
        rows.append({"order": order, "perplexity": perplexity(lm, held),
                     "discounts": {str(n): d for n, d in lm.discount.items()}})
        print(f"{order}-gram Kneser-Ney: perplexity {rows[-1]['perplexity']:.1f} on {len(held)} held-out quatrains")
    write_result("ngram", {"rows": rows, "train_stanzas": len(train), "held_out_poems": len(held),
                           "vocabulary": len(model.vocab), "machine": machine(),
                           "command": f"python benchmarks/ngram.py --orders {args.orders}"})


if __name__ == "__main__":
    main()
