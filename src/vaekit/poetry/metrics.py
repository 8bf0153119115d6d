"""How good are poems: the rules of verse (Pingshui rhyme, template fit, tones), repetition, copying, diversity, fit.

Every function takes punctuation-free texts, so generated poems and held-out Tang poems are measured alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import torch

from vaekit.data.poetry import UNK
from vaekit.evaluate import elbo_metrics
from vaekit.poetry.decode import LineSet
from vaekit.poetry.parallel import MIDDLE_COUPLETS, association, couplet_lines
from vaekit.poetry.verse import alternates, check, has_doubled_character, lines_of_text, nian_dui, rhyme_groups

__all__ = ["distinct_n", "novelty", "rhyme_share", "template_fit_share", "alternation_share", "doubled_share",
           "repetition", "verse_metrics", "fit", "form_share", "couplet_parallelism", "nian_dui_share",
           "interpolation_overlap"]


def form_share(texts: list[str], length: int) -> dict[str, float]:
    """Share with the right number of characters, and share with no unknown character."""
    return {"right_shape": sum(len(t) == length for t in texts) / len(texts),
            "no_unknown": sum(UNK not in t for t in texts) / len(texts)}


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams over all n-grams (within lines), the usual diversity measure."""
    grams = [line[i:i + n] for t in texts for line in lines_of_text(t) for i in range(len(line) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


def novelty(texts: list[str], corpus_texts: set[str], corpus_lines: set[str]) -> dict[str, float]:
    """Share of generated lines, and of whole poems, that do not occur in the training corpus."""
    lines = [line for t in texts for line in lines_of_text(t)]
    return {"novel_lines": sum(line not in corpus_lines for line in lines) / max(1, len(lines)),
            "novel_poems": sum(t not in corpus_texts for t in texts) / len(texts)}


def _rhymes(text: str) -> bool | None:
    """Lines 2 and 4 (6, 8) end in characters sharing one of the 106 Pingshui groups, and line 1 too when the
    template it fits best asks for it; None for a couplet (nothing to rhyme with)."""
    lines = lines_of_text(text)
    if len(lines) < 4:
        return None
    ends = [line[-1] for line in lines[1::2]]
    if 0 in check(text).template.rhyme_lines:
        ends.append(lines[0][-1])
    listed = [rhyme_groups(c) for c in ends if rhyme_groups(c)]  # as in the checker: unlisted variants are neutral
    return len(listed) >= 2 and bool(frozenset.intersection(*listed))


def rhyme_share(texts: list[str]) -> float | None:
    """Share of poems whose rhyming lines rhyme under the Pingshui rhyme book (None for couplets)."""
    verdicts = [_rhymes(t) for t in texts]
    return None if verdicts and verdicts[0] is None else sum(map(bool, verdicts)) / max(1, len(verdicts))


def template_fit_share(texts: list[str]) -> float:
    """Share of poems that keep every rule of one template (tones, 孤平, 三平尾, rhyme)."""
    return sum(check(t).fits for t in texts) / max(1, len(texts))


def alternation_share(texts: list[str]) -> float:
    """Share of lines whose 2nd and 4th characters take opposite tones (lines with an unlisted one left out)."""
    verdicts = [alternates(line[1], line[3]) for t in texts for line in lines_of_text(t)]
    known = [v for v in verdicts if v is not None]
    return sum(known) / max(1, len(known))


def doubled_share(texts: list[str]) -> float:
    """Share of poems with a character twice in a row within a line."""
    return sum(has_doubled_character(t) for t in texts) / max(1, len(texts))


def repetition(texts: list[str]) -> dict[str, float]:
    """How much poems repeat characters anywhere in the poem: the share with some character more than once, the
    share with one three times or more, and the repeats per poem (characters less distinct characters)."""
    counts = [Counter(t) for t in texts]
    n = max(1, len(texts))
    return {"repeated_character": sum(max(c.values(), default=0) >= 2 for c in counts) / n,
            "character_thrice": sum(max(c.values(), default=0) >= 3 for c in counts) / n,
            "repeats_per_poem": sum(sum(c.values()) - len(c) for c in counts) / n}


def couplet_parallelism(texts: list[str]) -> dict[str, float] | None:
    """Eight-line poems: the mean parallelism of their middle couplets (頷聯, 頸聯) and of their first ones (首聯,
    which the rules leave free), by the association table that the decoder steers with; None for other forms."""
    if not texts or len(lines_of_text(texts[0])) != 8:
        return None
    table = association()
    chars = len(lines_of_text(texts[0])[0])
    couplets = [couplet_lines(t, chars) for t in texts]
    return {"middle": sum(table.couplet(*c[i]) for c in couplets for i in MIDDLE_COUPLETS) / (2 * len(texts)),
            "first": sum(table.couplet(*c[0]) for c in couplets) / len(texts)}


def nian_dui_share(texts: list[str]) -> float | None:
    """Share of poems of four or more lines whose 2nd characters keep 粘 and 對 throughout (None for couplets)."""
    if not texts or len(lines_of_text(texts[0])) < 4:
        return None
    return sum(not nian_dui(lines_of_text(t)) for t in texts) / len(texts)


def verse_metrics(texts: list[str], corpus_lines: LineSet | None) -> dict[str, float | None]:
    """Every rule-and-diversity figure of a set of poems, as reported beside the corpus's own."""
    lines = [line for t in texts for line in lines_of_text(t)]
    parallel = couplet_parallelism(texts)
    copied = None if corpus_lines is None else sum(line in corpus_lines for line in lines) / max(1, len(lines))
    return {"rhyme": rhyme_share(texts), "template_fit": template_fit_share(texts),
            "alternating_2_4": alternation_share(texts), "doubled_character": doubled_share(texts),
            "copied_lines": copied, "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "no_unknown": sum(UNK not in t for t in texts) / max(1, len(texts)), **repetition(texts),
            "nian_dui": nian_dui_share(texts),
            "parallel_middle": None if parallel is None else parallel["middle"],
            "parallel_first": None if parallel is None else parallel["first"]}


def _mean_elbo(model: torch.nn.Module, poems: torch.Tensor, labels: torch.Tensor, device: torch.device | str,
               draws: int) -> dict[str, float]:
    """`elbo_metrics` averaged over `draws` draws of z a poem."""
    runs = [elbo_metrics(model, poems, labels, device=device) for _ in range(draws)]
    return {key: sum(r[key] for r in runs) / draws for key in runs[0]}


@torch.no_grad()
def fit(model: torch.nn.Module, held_out: torch.Tensor, labels: torch.Tensor | None = None,
        device: torch.device | str = "cpu", iwae_poems: int = 0, k: int = 100, elbo_draws: int = 4) -> dict[str, float]:
    """How well the model fits held-out poems, and how much its z carries.

    Reconstruction accuracy per character (greedy decoding at the posterior mean), the true ELBO and KL, active
    units (Burda's criterion), the perplexity bound exp(-ELBO per character) and, on the first `iwae_poems`
    poems, the importance-sampled one from `iwae_bound` with k samples (tighter: log p(x) >= IWAE_k >= ELBO).
    The ELBO's likelihood term (both bounds) is averaged over `elbo_draws` draws of z a poem (the KL is in closed
    form): with one draw the quatrain model's bound moved by about 1.5 either way from draw to draw on 1,650 poems.
    """
    if elbo_draws < 1:
        raise ValueError(f"elbo_draws must be at least 1, got {elbo_draws}")
    from vaekit.evaluate import estimate_nll, latent_statistics

    labels = torch.zeros(len(held_out), dtype=torch.long) if labels is None else labels
    x, y = held_out.to(device), labels.to(device) if getattr(model, "uses_labels", False) else None
    recon = torch.cat([model.greedy(model.posterior(x[i:i + 500], None if y is None else y[i:i + 500]).mean,
                                    None if y is None else y[i:i + 500]) for i in range(0, len(x), 500)])
    metrics = _mean_elbo(model, held_out, labels, device, elbo_draws)
    stats = latent_statistics(model, held_out, labels, device=device)
    length = held_out.shape[1]
    out = {"reconstruction_accuracy": float((recon == x).float().mean()),
           "elbo_per_char": metrics["elbo"] / length, "kl_per_poem": metrics["kl"],
           "perplexity_bound": math.exp(-metrics["elbo"] / length),
           "active_units": stats["active_units"], "latent_dim": stats["latent_dim"], "held_out_poems": len(x),
           "elbo_draws": elbo_draws}
    if iwae_poems > 0:
        n = min(iwae_poems, len(x))
        nll = estimate_nll(model, held_out[:n], labels[:n], k=k, device=device)
        subset = _mean_elbo(model, held_out[:n], labels[:n], device, elbo_draws)
        out.update({"iwae_k": k, "iwae_poems": n, "perplexity_iwae": math.exp(nll.nll / length),
                    "perplexity_bound_same_poems": math.exp(-subset["elbo"] / length)})
    return out


@torch.no_grad()
def interpolation_overlap(model: torch.nn.Module, held_out: torch.Tensor, pairs: int = 100, steps: int = 7,
                          seed: int = 0) -> dict[str, object]:
    """Walk the line between the posterior means of random pairs of held-out poems, decoding greedily.

    At each inner point, count the characters the decoded poem shares with each end (as sets). Reports the
    mean overlap with the start and with the end at every step, and the share of inner points that share more
    with the nearer end than with the farther one (the midpoint, equally near both, is left out).
    """
    pairs = min(pairs, len(held_out) // 2)
    if pairs < 1:
        raise ValueError("interpolation needs at least two held-out poems")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(held_out), generator=g)[: 2 * pairs]
    a, b = held_out[order[:pairs]], held_out[order[pairs: 2 * pairs]]
    za, zb = model.posterior(a).mean, model.posterior(b).mean
    t = torch.linspace(0, 1, steps)
    paths = [model.greedy((1 - s) * za + s * zb) for s in t]
    near_a, near_b, nearer, counted = [], [], 0, 0
    for i, s in enumerate(t.tolist()):
        share_a = [len(set(p.tolist()) & set(x.tolist())) for p, x in zip(paths[i], a, strict=True)]
        share_b = [len(set(p.tolist()) & set(x.tolist())) for p, x in zip(paths[i], b, strict=True)]
        near_a.append(sum(share_a) / pairs)
        near_b.append(sum(share_b) / pairs)
        if 0 < i < steps - 1 and abs(s - 0.5) > 1e-6:
            nearer += sum((sa > sb) if s < 0.5 else (sb > sa) for sa, sb in zip(share_a, share_b, strict=True))
            counted += pairs
    return {"steps": steps, "pairs": pairs, "overlap_with_start": near_a, "overlap_with_end": near_b,
            "nearer_end_share": nearer / max(1, counted)}
