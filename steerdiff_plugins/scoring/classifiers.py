"""Classifiers for guidance: the protocol, a named registry, and the built-in sentiment classifiers.

A classifier names its ``labels`` (a tuple of strings, e.g. ``("negative", "positive")``) and offers one
or more of three capabilities; :class:`steerdiff_plugins.guidance.ClassifierGuidance` uses one of them
per run (``mode=``; by default the first one present in this order):

``"gradient"`` -- a differentiable classifier over one-hot inputs::

    log_probs(x: FloatTensor (B, L, V)) -> FloatTensor (B, C)

  ``x[b, i]`` is a probability vector over the model's vocabulary at canvas position ``i`` (one-hot at
  committed positions; at masked positions either the one-hot of the mask token or the model's current
  prediction, see ``soft_masks``). The result is log p(label | x) for every label, differentiable in
  ``x``. A classifier over token embeddings computes ``x @ E`` itself, so the same protocol covers it.
  Guidance takes the first-order (Taylor) approximation of log p(target | x with position i set to
  token v): ``bias[b, i, v] = scale * d log p(target | x) / d x[b, i, v]`` (Nisonoff et al. 2024;
  Schiff et al. 2024, arXiv 2412.10193). A per-position constant does not change the softmax, so the
  gradient itself is the bias.

``"table"`` -- a token score table::

    token_scores() -> FloatTensor (n, C)

  the score of each token id (``n <= V``; ids beyond ``n`` score 0) toward each label. Guidance adds
  ``scale * token_scores()[:, target]`` at every masked position. :func:`lexicon_table` maps a word
  lexicon (VADER's) onto a tokenizer: a word-start token gets the score of the word it spells.

``"scorer"`` -- any external scorer of whole texts (a sentiment API, a regex, a toxicity model)::

    score(texts: list[str]) -> sequence of C scores per text (higher = more of that label)

  Guidance reranks: each step it samples ``k`` candidate fills of the masked positions from the current
  logits, decodes and scores them, and biases toward the best candidate's tokens.

Binding: a classifier that depends on the model (its tokenizer, its embeddings, its vocabulary size)
implements ``bind(model) -> classifier``; guidance calls it once per (classifier, model) and caches the
bound object. ``model`` is a :class:`steerdiff.Adapter`.

Registry: ``register_classifier("name", factory)`` makes ``ClassifierGuidance("name", ...)`` work; the
factory is a zero-argument callable (called once, on first use) or a classifier object. Plugins register
theirs through the ``register_classifiers`` hook (``steerdiff.hookspecs``), like constraint types. Built-in names:

- ``"sentiment"``: VADER (table from its lexicon, scorer from its compound score), labels
  ``("negative", "positive")``.
- ``"sentiment-probe"``: a differentiable linear probe over the model's own input embeddings, fitted in
  closed form (ridge regression) to VADER's word scores on binding; gradient kind.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Callable, Sequence

import torch

from steerdiff.errors import ConfigError, ConstraintError
from steerdiff.vocab import vocab_for

MODES = ("gradient", "table", "scorer")
_METHOD = {"gradient": "log_probs", "table": "token_scores", "scorer": "score"}


def modes_of(classifier: Any) -> list[str]:
    """The capabilities a classifier offers, in guidance's order of preference."""
    return [m for m in MODES if callable(getattr(classifier, _METHOD[m], None))]


def check_classifier(classifier: Any, what: str = "classifier") -> None:
    """Raise :class:`ConstraintError` naming what is missing when ``classifier`` breaks the protocol."""
    labels = getattr(classifier, "labels", None)
    if not labels or isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
        raise ConstraintError(f"{what} {classifier!r} must have `labels`, a sequence of label strings (e.g. ('negative', 'positive'))")
    if not modes_of(classifier) and not callable(getattr(classifier, "bind", None)):
        raise ConstraintError(f"{what} {classifier!r} has none of log_probs (gradient), token_scores (table), score (scorer), bind(model)")


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
_factories: dict[str, Any] = {}
_instances: dict[str, Any] = {}


def register_classifier(name: str, factory: Callable[[], Any] | Any, *, replace: bool = False) -> None:
    """Register a classifier (or a zero-argument factory of one) under ``name``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"classifier name must be a non-empty string, got {name!r}")
    if name in _factories and not replace:
        raise ConfigError(f"classifier {name!r} is already registered; pass replace=True to replace it")
    _factories[name] = factory
    _instances.pop(name, None)


def _load_entry_points() -> None:
    """Add the classifiers plugins register through the ``register_classifiers`` hook (asked on every lookup,
    so a plugin registered by hand is seen; a name already registered keeps its factory)."""
    from steerdiff.plugins import get_plugin_manager

    def register(name: str, factory: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"classifier name must be a non-empty string, got {name!r}")
        _factories.setdefault(name, factory)

    get_plugin_manager().hook.register_classifiers(register=register)


def classifier_names() -> list[str]:
    _load_entry_points()
    return sorted(_factories)


def get_classifier(name: str) -> Any:
    """The registered classifier called ``name`` (built on first use)."""
    _load_entry_points()
    if name not in _factories:
        raise ConstraintError(f"unknown classifier {name!r}; registered classifiers: {sorted(_factories)}")
    if name not in _instances:
        f = _factories[name]
        if isinstance(f, type) or (callable(f) and not hasattr(f, "labels")):
            obj = f()  # a class or a factory function
        else:
            obj = f  # a classifier object
        check_classifier(obj, f"classifier {name!r}")
        _instances[name] = obj
    return _instances[name]


_bound: "weakref.WeakKeyDictionary[Any, dict[int, Any]]" = weakref.WeakKeyDictionary()


def bind(classifier: Any, model: Any) -> Any:
    """``classifier.bind(model)`` once per (classifier, model), cached; the classifier itself if it has no bind."""
    fn = getattr(classifier, "bind", None)
    if not callable(fn):
        return classifier
    try:
        per = _bound.setdefault(classifier, {})
    except TypeError:
        return fn(model)
    hit = per.get(id(model))
    if hit is None or hit[0]() is not model:
        bound = fn(model)
        check_classifier(bound, f"{classifier!r}.bind(model)")
        try:
            ref = weakref.ref(model)
        except TypeError:
            ref = lambda m=model: m  # noqa: E731
        per[id(model)] = hit = (ref, bound)
    return hit[1]


# --------------------------------------------------------------------------------------------------
# Lexicons onto vocabularies
# --------------------------------------------------------------------------------------------------
def word_start_tokens(tokenizer) -> dict[int, str]:
    """``{token id: lower-cased word}`` for tokens that start a word and spell letters only.

    A token starts a word when its text begins with a space (byte-level BPE ``Ġx``, SentencePiece
    ``▁x``, WordPiece tokens that are not ``##`` continuations all write a leading space). A tokenizer
    that writes every space as a token of its own (steerdiff-tiny's: ``"good news"`` is ``good``, `` ``,
    ``new``, ``s``) has no such tokens; there every letters-only token counts, so a piece inside a longer
    word (``new`` of ``news``) gets the score of the word it spells.
    """
    vocab = vocab_for(tokenizer)
    split = spaces_are_tokens(tokenizer)
    out = {}
    for tid, b in enumerate(vocab.token_bytes):
        if tid in vocab.special:
            continue
        if b.startswith(b" "):
            b = b[1:]
        elif not split:
            continue
        try:
            word = b.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if word and (word.isalpha() or word.replace("'", "").isalpha()):
            out[tid] = word.lower()
    return out


def spaces_are_tokens(tokenizer) -> bool:
    """Whether the tokenizer writes spaces as tokens of their own: no token of its vocabulary is a space
    followed by a letter (``" great"``), while the space alone is one."""
    vocab = vocab_for(tokenizer)
    bs = [b for t, b in enumerate(vocab.token_bytes) if t not in vocab.special]
    return b" " in bs and not any(len(b) > 1 and b[:1] == b" " and b[1:2].isalpha() for b in bs)


def lexicon_table(tokenizer, lexicon: dict[str, float], labels: Sequence[str] = ("negative", "positive"), norm: float | None = None) -> torch.Tensor:
    """``(len(tokenizer), 2)`` token scores from a word lexicon (positive = toward ``labels[1]``).

    A word-start token gets the score of the word it spells (``" great"`` -> lexicon["great"]); every
    other token scores 0. Scores are divided by ``norm`` (default 1: the lexicon's own scale; VADER's
    words lie in [-4, 4]). Column 0 is the negated score (toward ``labels[0]``), column 1 the score.
    """
    if not isinstance(lexicon, dict) or not lexicon:
        raise ConstraintError("a lexicon must be a non-empty dict {word: score}")
    low = {}
    for w, s in lexicon.items():
        if not isinstance(w, str) or isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise ConstraintError(f"lexicon entry {w!r}: {s!r} is not a word with a finite number score")
        low.setdefault(w.lower(), float(s))
    norm = float(norm) if norm else 1.0
    table = torch.zeros((len(tokenizer), 2))
    for tid, word in word_start_tokens(tokenizer).items():
        s = low.get(word)
        if s:
            table[tid, 1] = s / norm
            table[tid, 0] = -s / norm
    return table


class LexiconClassifier:
    """A word lexicon as a table classifier (and a scorer: mean word score of a text)."""

    labels = ("negative", "positive")

    def __init__(self, lexicon: dict[str, float], norm: float | None = None, name: str = "lexicon"):
        if not isinstance(lexicon, dict) or not lexicon:
            raise ConstraintError("LexiconClassifier needs a non-empty dict {word: score}")
        self.lexicon, self.norm, self.name = lexicon, norm, name
        self._low = {w.lower(): float(s) for w, s in lexicon.items()}
        self._norm = float(norm) if norm else 1.0

    def bind(self, model) -> "_BoundTable":
        return _BoundTable(self, lexicon_table(model.tokenizer, self.lexicon, self.labels, self.norm))

    def score(self, texts: list[str]) -> list[list[float]]:
        out = []
        for t in texts:
            words = [w.strip(".,!?;:\"'()").lower() for w in t.split()]
            s = sum(self._low.get(w, 0.0) for w in words) / self._norm / max(1, len(words)) ** 0.5
            out.append([-s, s])
        return out

    def __repr__(self) -> str:
        return f"LexiconClassifier({self.name!r}, {len(self.lexicon)} words)"


class _BoundTable:
    def __init__(self, parent, table: torch.Tensor):
        self.parent, self.table, self.labels = parent, table, parent.labels

    def token_scores(self) -> torch.Tensor:
        return self.table

    def score(self, texts):
        return self.parent.score(texts)

    def __repr__(self) -> str:
        return f"{self.parent!r} bound ({self.table.shape[0]} tokens)"


# --------------------------------------------------------------------------------------------------
# VADER
# --------------------------------------------------------------------------------------------------
def _vader():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ConfigError("the 'sentiment' classifier needs vaderSentiment: pip install 'steerdiff[guidance]'") from exc
    return SentimentIntensityAnalyzer()


class VaderSentiment(LexiconClassifier):
    """VADER: its lexicon as a token table (raw word scores, in [-4, 4]) and its compound score as a scorer."""

    def __init__(self):
        self.analyzer = _vader()
        super().__init__(dict(self.analyzer.lexicon), norm=1.0, name="vader")

    def score(self, texts: list[str]) -> list[list[float]]:
        out = []
        for t in texts:
            c = self.analyzer.polarity_scores(t)["compound"]
            out.append([-c, c])
        return out

    def compound(self, text: str) -> float:
        return float(self.analyzer.polarity_scores(text)["compound"])

    def __repr__(self) -> str:
        return "VaderSentiment()"


# --------------------------------------------------------------------------------------------------
# A differentiable classifier over token embeddings: a linear sentiment probe
# --------------------------------------------------------------------------------------------------
class EmbeddingProbe:
    """Logistic classifier over token embeddings: ``z = sum_i (x_i @ E) @ w * a``, p(positive) = sigmoid(z).

    ``E`` (V, H) is an embedding matrix (the model's own input embeddings by default), ``w`` (H,) a
    direction. Special tokens (padding, masks) contribute nothing. Gradient kind.
    """

    labels = ("negative", "positive")

    def __init__(self, embeddings: torch.Tensor, direction: torch.Tensor, *, bias: float = 0.0, gain: float = 1.0, ignore: Sequence[int] = ()):
        if embeddings.dim() != 2 or direction.shape != (embeddings.shape[1],):
            raise ConstraintError(f"EmbeddingProbe: embeddings (V, H) and direction (H,) expected, got {tuple(embeddings.shape)} and {tuple(direction.shape)}")
        proj = (embeddings.float() @ direction.float()) * gain  # (V,) score of each token
        if ignore:
            proj[list(ignore)] = 0.0
        self.proj, self.bias = proj.detach(), float(bias)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        V = min(x.shape[-1], self.proj.shape[0])
        z = (x[..., :V] * self.proj[:V].to(x.device)).sum(dim=(-1, -2)) + self.bias  # (B,)
        return torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], dim=-1)  # (B, 2)


class SentimentProbe:
    """Unbound factory of :class:`EmbeddingProbe`: on ``bind(model)`` it fits a ridge regression from the
    model's input embeddings of word-start tokens to their VADER scores (closed form, well under a second)."""

    labels = ("negative", "positive")

    def __init__(self, lexicon: dict[str, float] | None = None, ridge: float = 0.05, gain: float = 1.0):
        self.lexicon, self.ridge, self.gain = lexicon, ridge, gain

    def bind(self, model) -> EmbeddingProbe:
        emb = model.model.get_input_embeddings().weight.detach().float()  # (V, H)
        lex = self.lexicon if self.lexicon is not None else dict(_vader().lexicon)
        table = lexicon_table(model.tokenizer, lex)[:, 1]  # (n,)
        words = list(word_start_tokens(model.tokenizer))
        if not words:
            raise ConstraintError("sentiment-probe: the tokenizer has no word-start tokens to fit on")
        X = emb[words]  # (N, H)
        X = X - X.mean(0, keepdim=True)
        y = table[words]  # (N,)
        H = X.shape[1]
        gram = X.T @ X  # (H, H)
        lam = self.ridge * float(torch.trace(gram)) / H  # ridge relative to the embeddings' scale
        w = torch.linalg.solve(gram + lam * torch.eye(H), X.T @ y)  # (H,)
        scored = y != 0
        if bool(scored.any()):  # rescale so the probe's scores of lexicon words have the lexicon's size
            fit = X[scored] @ w
            w = w * float(y[scored].pow(2).mean().sqrt() / fit.pow(2).mean().sqrt().clamp_min(1e-12))
        special = sorted(vocab_for(model.tokenizer).special | {model.mask_id, model.fill_id})
        return EmbeddingProbe(emb, w, gain=self.gain, ignore=[s for s in special if s < emb.shape[0]])

    def __repr__(self) -> str:
        return "SentimentProbe()"


register_classifier("sentiment", VaderSentiment)
register_classifier("sentiment-probe", SentimentProbe)
