"""Choose each class's 4 orthogonal concept words by measurement, not by trusting the LLM.

Objective: the rendered class prompts' pooled embeddings should have the smallest maximum
inter-class cosine, then the smallest mean. Relevance rule: a word may serve class ``c`` only if,
among all class labels, it is closest to ``c``'s own label (its margin
``cos(w, label_c) - max_{c' != c} cos(w, label_c')`` is positive). Without that rule the
optimiser happily picks words that are far from every class, including their own, and a
"unique" word that points at a neighbour would make the prompt confusable instead of distinct.

Search, all deterministic for a seed:
1. surrogate: a prompt's vector is approximated by ``normalize(sum of its unit word vectors +
   label_weight * unit label vector)``, so thousands of choices cost matrix products only;
2. greedy start (per class, add the word that keeps it farthest from the others), then local
   search by single-word swaps on the worst pair until nothing improves, plus seeded restarts;
3. exact polish: the same swaps evaluated on the real rendered prompts (bounded steps).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from prompt_kit.styles import WORDS_PER_PROMPT

EmbedPooled = Callable[[Sequence[str]], torch.Tensor]
"""texts -> unit pooled vectors ``[N, D]``."""

_EPS = 1e-6


@dataclass
class SelectionSettings:
    seed: int = 0
    restarts: int = 4
    polish_steps: int = 30
    label_weight: float = 1.0
    words: int = WORDS_PER_PROMPT


@dataclass
class SelectionResult:
    chosen: dict[str, list[str]]
    report: dict = field(default_factory=dict)


def objective(vectors: torch.Tensor) -> tuple[float, float]:
    """(max, mean) off-diagonal cosine of unit vectors ``[C, D]``; compared lexicographically."""
    sim = vectors @ vectors.T
    mask = ~torch.eye(sim.shape[0], dtype=torch.bool)
    values = sim[mask]
    return float(values.max()), float(values.mean())


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Is objective ``a`` strictly better than ``b`` (max first, then mean)?"""
    if a[0] < b[0] - _EPS:
        return True
    return abs(a[0] - b[0]) <= _EPS and a[1] < b[1] - _EPS


def word_margins(word_vectors: torch.Tensor, label_vectors: torch.Tensor, owner: int) -> torch.Tensor:
    """``cos(w, own label) - max cos(w, other labels)`` for each row of ``word_vectors``."""
    sim = word_vectors @ label_vectors.T
    own = sim[:, owner].clone()
    sim[:, owner] = float("-inf")
    return own - sim.max(dim=1).values


class _Problem:
    """Candidate pools as index arrays plus unit vectors for labels and words."""

    def __init__(self, names, labels, pools, embed: EmbedPooled, settings: SelectionSettings) -> None:
        self.names = names
        self.settings = settings
        self.label_vectors = embed(labels)
        words = sorted({word for pool in pools.values() for word in pool})
        self.word_index = {word: i for i, word in enumerate(words)}
        self.words = words
        self.word_vectors = embed(words) if words else torch.zeros(0, self.label_vectors.shape[1])
        self.allowed: list[list[int]] = []
        self.relaxed: list[str] = []
        self.rejected: dict[str, list[str]] = {}
        for c, name in enumerate(names):
            pool = [self.word_index[word] for word in pools[name]]
            margins = word_margins(self.word_vectors[pool], self.label_vectors, c)
            order = sorted(range(len(pool)), key=lambda i: (-float(margins[i]), i))
            keep = [pool[i] for i in order if margins[i] > 0]
            self.rejected[name] = [words[pool[i]] for i in order if margins[i] <= 0]
            if len(keep) < settings.words:  # too few relevant words: take the best margins, say so
                keep = [pool[i] for i in order[: max(settings.words, len(keep))]]
                self.relaxed.append(name)
            self.allowed.append(keep)

    def vector(self, c: int, chosen: Sequence[int]) -> torch.Tensor:
        total = self.word_vectors[list(chosen)].sum(0) + self.settings.label_weight * self.label_vectors[c]
        return F.normalize(total, dim=-1)

    def vectors(self, selection: list[list[int]]) -> torch.Tensor:
        return torch.stack([self.vector(c, chosen) for c, chosen in enumerate(selection)])


def _greedy(problem: _Problem, start: list[list[int]]) -> list[list[int]]:
    """Rebuild each class's words one at a time, keeping it farthest from the other classes."""
    selection = [list(chosen) for chosen in start]
    vectors = problem.vectors(selection)
    for c, allowed in enumerate(problem.allowed):
        others = torch.cat([vectors[:c], vectors[c + 1 :]])
        chosen: list[int] = []
        base = problem.settings.label_weight * problem.label_vectors[c]
        for _ in range(problem.settings.words):
            options = [w for w in allowed if w not in chosen]
            partial = problem.word_vectors[chosen].sum(0) + base
            candidates = F.normalize(partial + problem.word_vectors[options], dim=-1)
            sim = candidates @ others.T
            score = sim.max(dim=1).values + _EPS * sim.mean(dim=1)
            chosen.append(options[int(torch.argmin(score))])
        selection[c] = chosen
        vectors[c] = problem.vector(c, chosen)
    return selection


def _swap_moves(selection: list[list[int]], c: int, allowed: list[int]) -> list[list[int]]:
    moves = []
    for slot in range(len(selection[c])):
        for word in allowed:
            if word not in selection[c]:
                moves.append(selection[c][:slot] + [word] + selection[c][slot + 1 :])
    return moves


def _best_swap(vectors: torch.Tensor, c: int, candidates: torch.Tensor) -> tuple[int, tuple[float, float]]:
    """Index of the candidate vector for class ``c`` giving the best objective, and that objective."""
    size = vectors.shape[0]
    sim = vectors @ vectors.T
    mask = ~torch.eye(size, dtype=torch.bool)
    rest = sim.clone()
    rest[c, :] = float("-inf")
    rest[:, c] = float("-inf")
    rest_max = rest[mask].max() if size > 2 else torch.tensor(float("-inf"))
    others = [i for i in range(size) if i != c]
    old_row_sum = sim[c, others].sum()
    total = sim[mask].sum()
    new_rows = candidates @ vectors[others].T  # [M, C-1]
    new_max = torch.maximum(new_rows.max(dim=1).values, rest_max)
    new_mean = (total - 2 * old_row_sum + 2 * new_rows.sum(dim=1)) / (size * (size - 1))
    order = sorted(range(len(candidates)), key=lambda i: (round(float(new_max[i]), 6), float(new_mean[i]), i))
    best = order[0]
    return best, (float(new_max[best]), float(new_mean[best]))


def _worst_pair(vectors: torch.Tensor) -> tuple[int, int]:
    sim = (vectors @ vectors.T).fill_diagonal_(float("-inf"))
    index = int(torch.argmax(sim))
    return divmod(index, sim.shape[0])


def _swap_search(
    problem: _Problem,
    selection: list[list[int]],
    vectors: torch.Tensor,
    candidate_vectors: Callable[[int, list[list[int]]], torch.Tensor],
    budget: int,
) -> tuple[list[list[int]], tuple[float, float]]:
    """Single-word swaps on the two classes of the worst pair, until none improves or ``budget``
    classes have been evaluated; ``candidate_vectors(c, moves)`` gives each move's class vector."""
    selection = [list(chosen) for chosen in selection]
    vectors = vectors.clone()
    current = objective(vectors)
    used = 0
    while used < budget:
        improved = False
        for c in _worst_pair(vectors):
            moves = _swap_moves(selection, c, problem.allowed[c])
            if not moves:
                continue
            used += 1
            candidates = candidate_vectors(c, moves)
            best, value = _best_swap(vectors, c, candidates)
            if _better(value, current):
                selection[c], vectors[c], current = moves[best], candidates[best], value
                improved = True
                break
        if not improved:
            break
    return selection, current


def _local_search(problem: _Problem, selection: list[list[int]], budget: int = 10_000) -> list[list[int]]:
    """Swap search on the surrogate vectors (matrix products only)."""

    def surrogate(c: int, moves: list[list[int]]) -> torch.Tensor:
        return torch.stack([problem.vector(c, move) for move in moves])

    return _swap_search(problem, selection, problem.vectors(selection), surrogate, budget)[0]


class _MemoEmbed:
    """``embed`` with a memory: finalists and polish steps share most of their prompts."""

    def __init__(self, embed: EmbedPooled) -> None:
        self.embed = embed
        self.memo: dict[str, torch.Tensor] = {}

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        missing = [text for text in dict.fromkeys(texts) if text not in self.memo]
        if missing:
            self.memo.update(zip(missing, self.embed(missing), strict=True))
        return torch.stack([self.memo[text] for text in texts])


def _polish(problem, selection, render_texts, embed_memo: _MemoEmbed, steps: int):
    """Swap search judged on the real rendered prompts' embeddings."""

    def exact(c: int, moves: list[list[int]]) -> torch.Tensor:
        return embed_memo([render_texts(c, move) for move in moves])

    vectors = embed_memo([render_texts(c, chosen) for c, chosen in enumerate(selection)])
    return _swap_search(problem, selection, vectors, exact, steps)


def select_orthogonal_words(
    names: list[str],
    labels: list[str],
    pools: dict[str, list[str]],
    render: Callable[[str, Sequence[str]], str],
    embed: EmbedPooled,
    settings: SelectionSettings | None = None,
) -> SelectionResult:
    """Pick ``settings.words`` words per class from ``pools`` (see the module docstring)."""
    settings = settings or SelectionSettings()
    for name in names:
        if len(pools[name]) < settings.words:
            raise ValueError(f"class {name!r} has {len(pools[name])} candidates; at least {settings.words} needed")
    problem = _Problem(names, labels, pools, embed, settings)
    embed_prompts = _MemoEmbed(embed)

    def render_texts(c: int, chosen: Sequence[int]) -> str:
        return render(names[c], [problem.words[w] for w in chosen])

    def exact(selection: list[list[int]]) -> tuple[float, float]:
        return objective(embed_prompts([render_texts(c, chosen) for c, chosen in enumerate(selection)]))

    first = [[problem.word_index[word] for word in pools[name][: settings.words]] for name in names]
    top_margin = [allowed[: settings.words] for allowed in problem.allowed]
    greedy = _greedy(problem, top_margin)
    searched = _local_search(problem, greedy)
    # The surrogate ranks thousands of choices; the few finalists are ranked on real prompts.
    finalists = [greedy, searched]
    rng = random.Random(settings.seed)
    for _ in range(settings.restarts):
        start = [rng.sample(allowed, settings.words) for allowed in problem.allowed]
        finalists.append(_local_search(problem, _greedy(problem, start)))
    scored = [(exact(selection), index) for index, selection in enumerate(finalists)]
    best_value, best_index = min(scored, key=lambda item: (round(item[0][0], 6), item[0][1], item[1]))
    polished, after = _polish(problem, finalists[best_index], render_texts, embed_prompts, settings.polish_steps)

    before = exact(first)
    if _better(before, after):  # never hand back something worse than the order we were given
        polished, after = first, before
    chosen = {names[c]: [problem.words[w] for w in polished[c]] for c in range(len(names))}
    report = {
        "method": "relevance filter, greedy + swap local search on a surrogate, exact polish",
        "objective": "max then mean off-diagonal cosine of the pooled prompt embeddings",
        "relevance_rule": "a word is closest to its own class label among all labels",
        "seed": settings.seed,
        "restarts": settings.restarts,
        "before": {"max_offdiag": round(before[0], 4), "mean_offdiag": round(before[1], 4), "pick": "first 4"},
        "greedy": _rounded(scored[0][0]),
        "local_search": _rounded(scored[1][0]),
        "best_of_restarts": _rounded(best_value),
        "after": _rounded(after),
        "relaxed_classes": problem.relaxed,
        "rejected_words": {name: words for name, words in problem.rejected.items() if words},
    }
    return SelectionResult(chosen=chosen, report=report)


def _rounded(value: tuple[float, float]) -> dict[str, float]:
    return {"max_offdiag": round(value[0], 4), "mean_offdiag": round(value[1], 4)}


def measured_selector(encoder, settings: SelectionSettings | None = None):
    """A word selector for :func:`prompt_kit.generate.build_prompt_set` that measures with ``encoder``."""

    def select(taxonomy, pools, render):
        result = select_orthogonal_words(taxonomy.class_names, taxonomy.labels, pools, render, encoder.pooled, settings)
        return result.chosen, {"encoder": encoder.spec, **result.report}

    return select
