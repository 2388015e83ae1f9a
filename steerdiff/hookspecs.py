"""The plugin contract: every hook steerdiff calls, and the manual for writing a plugin.

A plugin is a module (or object) with functions decorated by ``@steerdiff.hookimpl`` whose names are
hook names below. It is found through the ``steerdiff`` entry-point group::

    [project.entry-points.steerdiff]
    myplugin = "my_package.my_plugin"

An implementation may take any subset of a hook's arguments, by name (pluggy matches them). Hooks only
ever gain arguments, so a plugin written today keeps working.

Every call goes through pluggy: a plugin may wrap a hook (``@hookimpl(wrapper=True)``, a generator whose
``results = yield`` gets the list of results, or the exception, and which returns the results) and then
sees every call the loop makes; ``get_plugin_manager().add_hookcall_monitoring`` traces them. In every
hook but ``json_constraint`` and ``register_classifiers`` (whose callers see exceptions as raised), what an
implementation or a wrapper raises reaches the caller as :class:`steerdiff.errors.PluginError` naming the
plugin and the hook (a steerdiff error passes unchanged).

Shapes used throughout (B = batch rows, L = canvas length, V = vocabulary size):

- ``canvas``: ``LongTensor (B, L)``, the generated region after the prompt; masked positions hold
  ``run.mask_id``.
- ``masked``: ``BoolTensor (B, L)``, True where the canvas still holds a mask. This tensor, not a
  comparison with ``run.mask_id``, is authoritative (a causal model's placeholder id may also be a
  real token). ``run.masked`` always holds the current one.
- ``logits``: ``FloatTensor (B, L, V)``, the model's prediction for every canvas position.

Plugin state is per run, never global: keep it in ``run.state`` (a dict; use your plugin's name or a
constraint object as key). Compiled constraints may be cached across runs (keyed by constraint and
tokenizer) as long as they are immutable.

The order of plugins never matters: ``adjust_logits`` edits are combined by the core (allowed masks
ANDed, biases summed, applied once); ``check_commit`` filters are monotone (removing a commit from a
jointly valid set leaves a valid set), so any order yields a valid commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    import torch

    from .constraints import Constraint
    from .edits import LogitsEdit
    from .run import Result, Run

hookspec = pluggy.HookspecMarker("steerdiff")
hookimpl = pluggy.HookimplMarker("steerdiff")


@hookspec
def register_constraints(register: Callable[[str, type[Constraint]], None]) -> None:
    """Register constraint types by name, once when the plugin manager starts.

    ``register(name, cls)``: ``cls`` is a :class:`steerdiff.Constraint` subclass. The name lets users
    write ``{"type": name, ...}`` dicts and the CLI name the constraint; the class is also reachable as
    ``steerdiff.<ClassName>`` (``sd.Template``, ``sd.Regex``). Registering a name twice is an error that
    names both plugins. Returns nothing.
    """


@hookspec
def prepare(run: Run) -> None:
    """Compile this run's constraints for ``run.tokenizer``, before the first step.

    Runs once per ``generate`` call. Compile only the constraints of your own types
    (``run.constraints_of(MyConstraint)`` yields ``(row, constraint)`` pairs) and keep per-row state in
    ``run.state``. Compilation should be cached per (constraint, tokenizer) so repeating a constraint
    costs nothing. A constraint that can never be met on this canvas (empty language, longer than
    ``run.length``) must raise :class:`steerdiff.errors.ConstraintError` here, naming why: nothing
    invalid is ever generated and the loop never starts on an impossible canvas. Returns nothing.
    """


@hookspec
def init_canvas(run: Run, canvas: torch.Tensor, frozen: torch.Tensor) -> None:
    """Write fixed tokens into the canvas and freeze them, before the first step.

    ``canvas``: ``LongTensor (B, L)`` filled with ``run.mask_id``; write token ids in place.
    ``frozen``: ``BoolTensor (B, L)``; set True where you wrote a token that must never change.
    Runs once, after ``prepare``. Frozen positions are never proposed, never re-masked, and count as
    committed for every other plugin. Returns nothing.
    """


@hookspec
def adjust_logits(run: Run, step: int, canvas: torch.Tensor, masked: torch.Tensor,
                  logits: torch.Tensor) -> LogitsEdit | None:
    """Return an edit of the logits for this step, or None.

    Runs every step, after the model's forward pass, before sampling. ``logits`` ``(B, L, V)`` is
    read-only here: return a :class:`steerdiff.LogitsEdit` instead of mutating it. An edit has
    ``allowed`` (bool, broadcastable to ``(B, L, V)``, or ``(len(rows), L, V)`` when ``rows`` is given)
    and/or ``bias`` (float, same broadcasting). A mask that repeats across positions is cheaper as
    ``classes`` (bool ``(C, V)`` token sets) plus ``choice`` (int ``(B, L)`` or ``(len(rows), L)``, the
    class of each position, -1 for none): the core then never builds a ``(B, L, V)`` mask and touches
    only the banned (or kept) tokens. Only masked positions matter. The core ANDs every
    plugin's ``allowed``, sums every ``bias``, and applies the result once, so plugin order never
    matters. An exact plugin's ``allowed`` must be exactly the tokens that keep the canvas completable
    at each masked position; a soft plugin returns only ``bias``. A masked position left with no
    allowed token is an error that names the plugins whose masks met there.
    """


@hookspec
def check_commit(run: Run, step: int, canvas: torch.Tensor, masked: torch.Tensor, proposal: torch.Tensor,
                 commit: torch.Tensor, confidence: torch.Tensor) -> None:
    """Drop proposed commits that would leave the canvas impossible to complete.

    Runs every step after the schedule chose positions. ``proposal``: ``LongTensor (B, L)``, the
    sampled token at every position (meaningful where ``commit`` is True); ``confidence``: ``FloatTensor
    (B, L)``, the sampler's probability of each proposal (``-inf`` off the mask), the order in which to
    keep proposals when not all fit together. ``commit``: ``BoolTensor
    (B, L)``, the positions about to be committed: an exact plugin sets entries to False (in place) so
    that the tokens committed together are jointly valid. It must keep at least one commit in a row
    that had any (the most confident one is always individually valid, because it was drawn from the
    exact allowed set); the core raises :class:`steerdiff.errors.PluginError` if a row stalls. Never set
    an entry to True. Returns nothing.
    """


@hookspec
def on_commit(run: Run, step: int, canvas: torch.Tensor, masked: torch.Tensor,
              committed: torch.Tensor) -> torch.Tensor | None:
    """Update incremental state after tokens were written.

    ``canvas`` ``(B, L)`` already holds the new tokens and ``masked`` is updated; ``committed`` ``BoolTensor (B, L)`` marks the
    positions written this step. A plugin may re-mask speculative tokens of its own rows by returning a
    ``BoolTensor (B, L)`` of positions to re-mask (never frozen ones); the core applies the union.
    Returns None or that tensor.
    """


@hookspec
def on_step_end(run: Run, step: int, canvas: torch.Tensor, masked: torch.Tensor,
                committed: torch.Tensor) -> bool | None:
    """Observe the end of a step: tracing, progress, early stop.

    ``masked`` is the mask after this step's commits. Return True to stop the loop early (remaining
    masks are then filled by ``finalize`` rules of the plugins; exact plugins must not request an early
    stop). Returns None or True.
    """


@hookspec
def finalize(run: Run, results: list[Result]) -> None:
    """Decode, parse and validate, after the last step.

    ``results``: one :class:`steerdiff.Result` per row, with ``token_ids`` and ``text`` already set
    (text = the canvas decoded with padding stripped). A plugin may rewrite ``result.text`` (a template
    stitches its fixed spans back byte-identical), set ``result.value`` (a parsed object) and
    ``result.fields``, and must raise :class:`steerdiff.errors.ValidationFailed` (with the raw text)
    when an exact constraint's output does not validate: that is a bug, never silent. Returns nothing.
    """


@hookspec(firstresult=True)
def json_constraint(schema: Any, options: dict[str, Any]) -> Constraint | None:
    """The exact constraint ``sd.fill`` uses for ``schema`` (a JSON Schema dict or bool, or a pydantic model class).

    ``options``: ``JSONSchema`` keyword arguments (``max_depth``, ``max_items``, ``extract_from``). The
    first plugin that returns a constraint wins (``firstresult``). The constraint must be exact, and its
    plugin's ``finalize`` must set each row's ``result.value`` to the validated value (a dict, or the
    pydantic instance for a model class), raising :class:`steerdiff.errors.ValidationFailed` otherwise.
    Raise :class:`steerdiff.errors.UnsupportedSchemaError` (keyword and JSON pointer) for a schema none of
    your engines can express. The built-in json_schema plugin implements it (the regular engine, or the
    grammar engine for recursion and size). Returns the constraint, or None to leave it to another plugin.
    """


@hookspec
def warm_up(tokenizer: Any, fill_id: int | None) -> None:
    """Build, before the first request, what a plugin keeps per tokenizer across runs and would otherwise
    build inside the first one's compile (prefix trees, compiled kernels, walks every compile shares).

    ``steerdiff serve`` calls it once at start, off its event loop, with the served model's tokenizer and
    fill token id (None: the model has none). It must change no result, only when the work is done. The
    built-in json_schema plugin builds the token automata's prefix tree of the vocabulary, loads the
    compiled walk and walks JSON's string up to its quote. Returns nothing.
    """


@hookspec
def register_classifiers(register: Callable[[str, Any], None]) -> None:
    """Register guidance classifiers by name, for ``ClassifierGuidance("name", ...)``.

    ``register(name, factory)``: a classifier object or a zero-argument factory of one (the protocol is in
    ``steerdiff_plugins.scoring.classifiers``). Asked whenever a classifier is looked up by name; a name
    registered earlier (built-in, by ``register_classifier`` or by another plugin) keeps its factory.
    Returns nothing.
    """
