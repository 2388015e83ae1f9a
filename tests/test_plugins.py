"""The plugin contract: discovery through entry points, order-free edits, errors that name the plugin."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
import torch

import steerdiff as sd
from steerdiff.edits import LogitsEdit, apply_edits, check_edit

HERE = Path(__file__).parent


class _Plugin:
    """A hand-registered plugin; each test registers its own and removes it."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            setattr(self, name, sd.hookimpl(fn))


@pytest.fixture
def register():
    names = []

    def _reg(plugin, name):
        names.append(sd.register_plugin(plugin, name))
        return name

    yield _reg
    for n in names:
        sd.unregister_plugin(n)


def test_builtin_template_is_an_entry_point():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="steerdiff")}
    assert eps.get("template") == "steerdiff_plugins.template"
    assert "template" in sd.constraint_types()
    assert sd.Template is sd.constraint_types()["template"][0]


def test_apply_masks_and_biases_is_order_free():
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 5)
    edits = [
        LogitsEdit(allowed=torch.rand(shape, generator=g) > 0.3),
        LogitsEdit(bias=torch.randn(shape, generator=g)),
        LogitsEdit(allowed=torch.rand((1, 3, 5), generator=g) > 0.2, bias=torch.randn((1, 1, 5), generator=g), rows=torch.tensor([1])),
    ]
    base = torch.randn(shape, generator=g)
    one = apply_edits(base.clone(), edits)
    two = apply_edits(base.clone(), edits[::-1])
    assert torch.equal(torch.isneginf(one), torch.isneginf(two))
    assert torch.allclose(one.nan_to_num(neginf=0.0), two.nan_to_num(neginf=0.0))
    # the AND of the masks, the sum of the biases: computed by hand
    expect = base + edits[1].bias
    expect[1] += edits[2].bias[0]
    allowed = edits[0].allowed.clone()
    allowed[1] &= edits[2].allowed[0]
    expect = expect.masked_fill(~allowed, float("-inf"))
    assert torch.equal(torch.isneginf(one), torch.isneginf(expect))
    assert torch.allclose(one.nan_to_num(neginf=0.0), expect.nan_to_num(neginf=0.0))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), V=st.sampled_from([5, 40, 160]), use_rows=st.booleans(), use_masked=st.booleans())
def test_factorised_ban_equals_its_dense_mask(seed, V, use_rows, use_masked):
    """classes/choice applies exactly classes[choice] at every (masked) position, whichever branch
    (few bans, few kept, neither) each class takes."""
    g = torch.Generator().manual_seed(seed)
    B, L = 3, 7
    density = torch.tensor([0.03, 0.5, 0.97, 1.0, 0.0])  # few kept, half, few banned, all, none
    classes = torch.rand((5, V), generator=g) < density[:, None]  # (5, V)
    rows = torch.tensor([2, 0]) if use_rows else None
    R = 2 if use_rows else B
    choice = torch.randint(-1, 5, (R, L), generator=g)  # (R, L)
    masked = torch.rand((B, L), generator=g) < 0.7 if use_masked else None
    base = torch.randn((B, L + 2, V), generator=g)[:, 1 : L + 1]  # a non-contiguous (B, L, V) view, like the loop's
    got = apply_edits(base.clone(), [LogitsEdit(classes=classes, choice=choice, rows=rows)], masked)
    allowed = torch.ones((B, L, V), dtype=torch.bool)
    for i, r in enumerate(rows.tolist() if use_rows else range(B)):
        for l in range(L):
            if choice[i, l] >= 0 and (masked is None or masked[r, l]):
                allowed[r, l] = classes[choice[i, l]]
    expect = base.masked_fill(~allowed, float("-inf"))
    assert torch.equal(got, expect)


@pytest.mark.parametrize("edit, words", [
    (LogitsEdit(classes=torch.ones(2, 9, dtype=torch.bool)), "come together"),
    (LogitsEdit(classes=torch.ones(2, 8, dtype=torch.bool), choice=torch.zeros(2, 4, dtype=torch.long)), "classes must be"),
    (LogitsEdit(classes=torch.ones(2, 9, dtype=torch.bool), choice=torch.zeros(2, 3, dtype=torch.long)), "choice must be"),
    (LogitsEdit(classes=torch.ones(2, 9, dtype=torch.bool), choice=torch.full((2, 4), 2)), "outside"),
    ("nope", "LogitsEdit"),
    (LogitsEdit(allowed=torch.ones(3, 3, dtype=torch.bool)), "broadcastable"),
    (LogitsEdit(allowed=torch.ones(1, 1, 4, 9, dtype=torch.bool)), "grow"),
    (LogitsEdit(bias=torch.ones(1, 1, 1, dtype=torch.long)), "float"),
    (LogitsEdit(allowed=torch.ones(1, 1, 1)), "bool"),
])
def test_check_edit_names_the_problem(edit, words):
    assert words in check_edit(edit, (2, 4, 9))


def test_plugin_that_raises_is_named(model, register):
    def adjust_logits(run):
        raise RuntimeError("boom")

    register(_Plugin(adjust_logits=adjust_logits), "exploder")
    with pytest.raises(sd.PluginError, match=r"plugin 'exploder' in hook 'adjust_logits': RuntimeError: boom"):
        sd.generate(model, "x", length=4, steps=2)


def test_plugin_with_wrong_shape_is_named(model, register):
    def adjust_logits(logits):
        return LogitsEdit(bias=torch.zeros(logits.shape[-1] + 1))

    register(_Plugin(adjust_logits=adjust_logits), "misshapen")
    with pytest.raises(sd.PluginError, match="misshapen.*not broadcastable"):
        sd.generate(model, "x", length=4, steps=2)


def test_conflicting_masks_are_refused_not_sampled(model, register):
    V = len(model.tokenizer)

    def only(tid):
        def adjust_logits(logits):
            a = torch.zeros(logits.shape[-1], dtype=torch.bool)
            a[tid] = True
            return LogitsEdit(allowed=a)
        return adjust_logits

    register(_Plugin(adjust_logits=only(10)), "only10")
    register(_Plugin(adjust_logits=only(11)), "only11")
    with pytest.raises(sd.ConstraintError, match="exclude each other"):
        sd.generate(model, "x", length=4, steps=2)
    assert V > 11


def test_mask_and_bias_apply_and_are_argument_subsets(model, register):
    seen = []

    def adjust_logits(step, logits):  # a subset of the hook's arguments
        seen.append(step)
        a = torch.zeros(logits.shape[-1], dtype=torch.bool)
        a[[20, 21]] = True
        bias = torch.zeros(logits.shape[-1])
        bias[21] = 100.0
        return LogitsEdit(allowed=a, bias=bias)

    register(_Plugin(adjust_logits=adjust_logits), "two_tokens")
    out = sd.generate(model, "x", length=6, steps=3)
    assert out.token_ids == [21] * 6
    assert seen == [0, 1, 2]


def test_check_commit_can_defer_and_on_commit_can_remask(model, register):
    def check_commit(commit):
        # keep only the leftmost proposed commit per row
        first = commit.int().argmax(dim=1)
        keep = torch.zeros_like(commit)
        keep[torch.arange(commit.shape[0]), first] = commit.any(1)
        commit &= keep

    calls = {"n": 0}

    def on_commit(committed):
        calls["n"] += 1
        if calls["n"] == 2:  # re-mask what step 1 wrote, once
            return committed.clone()
        return None

    register(_Plugin(check_commit=check_commit, on_commit=on_commit), "one_at_a_time")
    out = sd.generate(model, "x", length=5, steps=2)
    assert out.steps == 6 and all(len(r.positions[0]) == 1 for r in out.trace.steps)
    assert out.trace.steps[1].remasked[0] == out.trace.steps[1].positions[0]


def test_check_commit_that_drops_everything_is_named(model, register):
    def check_commit(commit):
        commit[:] = False

    register(_Plugin(check_commit=check_commit), "staller")
    with pytest.raises(sd.PluginError, match="staller.*stall"):
        sd.generate(model, "x", length=4, steps=2)


def test_duplicate_constraint_name_is_named(register):
    class Other(sd.Constraint):
        pass

    with pytest.raises(sd.PluginError, match="already registered by plugin 'template'"):
        register(_Plugin(register_constraints=lambda register: register("template", Other)), "squatter")


def _fake_install(tmp_path: Path) -> Path:
    """Put tests/plugin_pkg on a path as an installed distribution (dist-info with entry_points.txt)."""
    site = tmp_path / f"site{len(list(tmp_path.glob('site*')))}"
    shutil.copytree(HERE / "plugin_pkg" / "steerdiff_counter", site / "steerdiff_counter")
    info = site / "steerdiff_counter-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: steerdiff-counter\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[steerdiff]\ncounter = steerdiff_counter\n")
    return site


SCRIPT = textwrap.dedent("""
    import json, sys
    import steerdiff as sd
    from steerdiff.testing import tiny_model
    types = sorted(sd.constraint_types())
    m = tiny_model("masked")
    cons = [sd.NoToken(token_id=30)] if "no_token" in types else []
    out = sd.generate(m, "x", length=8, steps=4, constraints=cons)
    print(json.dumps({{"types": types, "fields": out.fields, "ids": out.token_ids}}))
""")


def _run(tmp_path, env_extra):
    site = _fake_install(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(site), **env_extra)
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(HERE))], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_third_party_plugin_is_discovered_and_called_every_step(tmp_path):
    res = _run(tmp_path, {"STEERDIFF_DISABLE_PLUGIN_AUTOLOAD": ""})
    assert "no_token" in res["types"] and "template" in res["types"]
    assert res["fields"]["counter.steps"] == "4"
    assert 30 not in res["ids"]


def test_hook_wrapper_of_an_installed_plugin_sees_every_step(tmp_path):
    """tests/plugin_pkg's on_step_end is a pluggy wrapper: found through the entry point, it wraps each step's call."""
    res = _run(tmp_path, {"STEERDIFF_DISABLE_PLUGIN_AUTOLOAD": ""})
    assert res["fields"]["counter.wrapped"] == res["fields"]["counter.steps"] == "4"


def test_autoload_can_be_turned_off(tmp_path):
    res = _run(tmp_path, {"STEERDIFF_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "no_token" not in res["types"], "third-party plugins stay out"
    assert "template" in res["types"], "steerdiff's own plugins still load"
    assert "counter.steps" not in res["fields"]
    res = _run(tmp_path, {"STEERDIFF_DISABLE_PLUGIN_AUTOLOAD": "1", "STEERDIFF_PLUGINS": "counter"})
    assert "no_token" in res["types"], "STEERDIFF_PLUGINS enables one by name"


# ---- hook calls go through pluggy: a third-party plugin's hook wrappers and pluggy's tracing see every call,
# and the blame still names one plugin


def _only(tid):
    """An adjust_logits that allows token ``tid`` alone at every position (a fresh edit object each step)."""
    def adjust_logits(logits):
        a = torch.zeros(logits.shape[-1], dtype=torch.bool)  # (V,)
        a[tid] = True
        return LogitsEdit(allowed=a)
    return adjust_logits


class _Tap:
    """A third-party plugin made of new-style pluggy wrappers only: it records what each call got and returned."""

    def __init__(self):
        self.adjust, self.checks = [], []

    @sd.hookimpl(wrapper=True)
    def adjust_logits(self, step, logits):
        results = yield
        self.adjust.append((step, tuple(logits.shape), list(results)))
        return results

    @sd.hookimpl(wrapper=True)
    def check_commit(self, step, commit):
        before = commit.clone()
        results = yield
        self.checks.append((step, before, commit.clone()))
        return results


def test_hook_wrapper_of_a_third_party_plugin_sees_every_call(model, register):
    returned = []

    def adjust_logits(step, logits):
        edit = _only(21)(logits)
        returned.append((step, edit))
        return edit

    register(_Plugin(adjust_logits=adjust_logits), "only21")
    tap = _Tap()
    register(tap, "tap")
    out = sd.generate(model, "x", length=6, steps=3)
    assert out.token_ids == [21] * 6, "the wrapper passes the results through unchanged"
    assert [(s, shape[:2]) for s, shape, _ in tap.adjust] == [(s, (1, 6)) for s in range(out.steps)]
    for (step, _, results), (rstep, edit) in zip(tap.adjust, returned):
        assert step == rstep and any(r is edit for r in results), "the wrapper sees the very edit the plugin returned"
    assert [s for s, _, _ in tap.checks] == list(range(out.steps))
    assert all(bool((after <= before).all()) for _, before, after in tap.checks)


def test_hook_wrapper_can_change_the_results(model, register):
    class Narrow:
        @sd.hookimpl(wrapper=True)
        def adjust_logits(self, logits):
            results = yield
            return results + [_only(22)(logits)]

    register(Narrow(), "narrow")
    assert sd.generate(model, "x", length=5, steps=2).token_ids == [22] * 5


def test_hook_wrapper_is_blamed_for_the_result_it_adds(model, register):
    class Misshapen:
        @sd.hookimpl(wrapper=True)
        def adjust_logits(self, logits):
            results = yield
            return results + [LogitsEdit(bias=torch.zeros(logits.shape[-1] + 1))]

    register(Misshapen(), "misshapen_wrapper")
    with pytest.raises(sd.PluginError, match="plugin 'misshapen_wrapper' in hook 'adjust_logits': .*not broadcastable"):
        sd.generate(model, "x", length=4, steps=2)


def test_old_style_hookwrapper_sees_the_outcome(model, register):
    seen = []

    class OldTap:
        @sd.hookimpl(hookwrapper=True)
        def on_step_end(self, step, masked):
            outcome = yield
            seen.append((step, int(masked.sum()), outcome.get_result()))

    register(OldTap(), "old_tap")
    out = sd.generate(model, "x", length=4, steps=2)
    assert [s for s, _, _ in seen] == list(range(out.steps))
    assert seen[-1][1] == 0, "the last step leaves no mask"
    assert all(r == [] for _, _, r in seen), "no plugin asks to stop"


def test_pluggy_tracing_sees_each_hook_call_in_the_loops_order(model):
    calls = []
    pm = sd.get_plugin_manager()
    undo = pm.add_hookcall_monitoring(lambda name, impls, kw: calls.append(name),
                                      lambda outcome, name, impls, kw: None)
    try:
        out = sd.generate(model, "x", length=4, steps=2)
    finally:
        undo()
    step = ["adjust_logits", "check_commit", "on_commit", "on_step_end"]
    assert calls == ["prepare", "init_canvas"] + step * out.steps + ["finalize"]


def test_wrapper_sees_the_named_error_of_an_implementation(model, register):
    seen = []

    class Watch:
        @sd.hookimpl(wrapper=True)
        def adjust_logits(self):
            try:
                return (yield)
            except Exception as exc:
                seen.append(exc)
                raise

    def boom(run):
        raise RuntimeError("boom")

    register(Watch(), "watch")
    register(_Plugin(adjust_logits=boom), "exploder")
    msg = r"plugin 'exploder' in hook 'adjust_logits': RuntimeError: boom"
    with pytest.raises(sd.PluginError, match=msg) as info:
        sd.generate(model, "x", length=4, steps=2)
    assert seen and seen[0] is info.value, "the wrapper saw the same named error the caller gets"


def test_wrapper_that_raises_is_named(model, register):
    class Broken:
        @sd.hookimpl(wrapper=True)
        def on_step_end(self):
            yield
            raise ValueError("tap broke")

    register(Broken(), "broken_tap")
    with pytest.raises(sd.PluginError, match=r"plugin 'broken_tap' in hook 'on_step_end': ValueError: tap broke"):
        sd.generate(model, "x", length=4, steps=2)


@settings(max_examples=40, deadline=None)
@given(plans=st.lists(st.tuples(st.sampled_from(["value", "none", "raise"]), st.sampled_from(["", "tryfirst", "trylast"])),
                      min_size=1, max_size=6),
       wrapper_adds=st.booleans())
def test_call_each_names_each_result_like_pluggys_own_call(plans, wrapper_adds):
    """On random sets of implementations (some return a value, some None, some raise; tryfirst/trylast
    mixed) and an optional wrapper that adds a result: the named results are pluggy's own result list in
    pluggy's order, each with the plugin that returned it, ``_after`` runs once per implementation in that
    order, and the first implementation to raise is the one named."""
    from steerdiff.plugins import _call

    pm = sd.get_plugin_manager()
    ours = []
    try:
        for i, (what, order) in enumerate(plans):
            def on_step_end(step, _i=i, _what=what):
                if _what == "raise":
                    raise KeyError(f"p{_i}")
                return None if _what == "none" else (f"p{_i}", step)
            plugin = _Plugin()
            plugin.on_step_end = sd.hookimpl(on_step_end, **({order: True} if order else {}))
            ours.append(plugin)
            sd.register_plugin(plugin, f"p{i}")
        if wrapper_adds:
            class Adds:
                @sd.hookimpl(wrapper=True)
                def on_step_end(self):
                    return (yield) + [("wrapper", -1)]
            ours.append(Adds())
            sd.register_plugin(ours[-1], "adds")
        caller = pm.subset_hook_caller("on_step_end", [p for p in pm.get_plugins() if all(p is not o for o in ours)])
        kw = dict(run=None, step=7, canvas=None, masked=None, committed=None)
        impls = [i.plugin_name for i in reversed(caller.get_hookimpls()) if not i.wrapper]  # pluggy's call order
        raisers = [n for n in impls if plans[int(n[1:])][0] == "raise"]
        after = []
        if raisers:
            with pytest.raises(KeyError):  # pluggy's own call raises the plugin's exception unchanged
                caller(**kw)
            with pytest.raises(sd.PluginError, match=rf"plugin '{raisers[0]}' in hook 'on_step_end': KeyError: 'p\d'"):
                _call(caller, "on_step_end", lambda p, r: after.append(p), kw)
            assert after == impls[: impls.index(raisers[0])]
            return
        plain = caller(**kw)
        named = _call(caller, "on_step_end", lambda p, r: after.append(p), kw)
        assert [r for _, r in named] == plain
        assert after == impls
        assert [p for p, _ in named] == [("adds" if r == ("wrapper", -1) else r[0]) for r in plain]
        assert [r[0] for r in plain if r[0] != "wrapper"] == [n for n in impls if plans[int(n[1:])][0] == "value"]
    finally:
        for n in [pm.get_name(o) for o in ours]:
            if n is not None:
                sd.unregister_plugin(n)


def test_implementation_asking_for_an_argument_the_call_lacks_is_named(register):
    """A hook call that lacks an argument (a core bug: every call passes the spec's arguments) names the first
    implementation that asks for it, as before hook calls went through pluggy."""
    from steerdiff.plugins import _call

    plugin = _Plugin(adjust_logits=lambda run, logits: None)
    register(plugin, "needs_logits")
    pm = sd.get_plugin_manager()
    caller = pm.subset_hook_caller("adjust_logits", [p for p in pm.get_plugins() if p is not plugin])
    with pytest.warns(UserWarning, match="'logits'"), pytest.raises(
            sd.PluginError, match=r"plugin 'needs_logits' in hook 'adjust_logits': asks for unknown argument 'logits'"):
        _call(caller, "adjust_logits", None, dict(run=None, step=0, canvas=None, masked=None))
