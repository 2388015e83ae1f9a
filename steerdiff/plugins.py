"""The plugin manager: built-in plugins, entry-point discovery, constraint registry, hook calls that name plugins.

Built-in plugins are found by what they are: the modules of steerdiff's own ``steerdiff_plugins`` package
(``BUILTIN``), imported by module name and checked to sit next to the ``steerdiff`` package, never by a
distribution name (anyone can publish a distribution called "steerdiff"). Third-party plugins come
through the ``steerdiff`` entry-point group. ``STEERDIFF_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the
built-ins (third-party ones are then enabled one by one with ``STEERDIFF_PLUGINS=name,name``).

Every hook call goes through pluggy (``pm.hook.NAME(...)``), so a plugin's hook wrappers
(``@hookimpl(wrapper=True)`` or ``hookwrapper=True``) and ``pm.add_hookcall_monitoring`` / ``enable_tracing``
see every call the loop makes. The per-plugin blame rides inside pluggy's call: the manager wraps each hook
implementation once, when its plugin registers (:func:`_named`); during a :func:`call_each` call that wrapper
records ``(plugin, result)`` and turns an exception into :class:`PluginError` naming the plugin and the hook.
Called any other way (``pm.hook.json_constraint(...)`` directly), an implementation behaves exactly as written.
"""

from __future__ import annotations

import functools
import importlib
import os
from contextvars import ContextVar
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

import pluggy
from pluggy import HookCallError

from . import hookspecs
from .constraints import Constraint
from .errors import ConstraintError, PluginError, SteerdiffError

GROUP = "steerdiff"
# name -> module: the same table as pyproject.toml's [project.entry-points.steerdiff]
BUILTIN = {
    "template": "steerdiff_plugins.template",
    "regex": "steerdiff_plugins.regex",
    "json_schema": "steerdiff_plugins.json_schema",
    "guidance": "steerdiff_plugins.guidance",
    "grammar": "steerdiff_plugins.grammar",
    "copy": "steerdiff_plugins.copy",
}
_pm: pluggy.PluginManager | None = None
_registry: dict[str, tuple[type[Constraint], str]] = {}
_origins: dict[str, str] = {}


def _autoload_disabled() -> bool:
    return os.environ.get("STEERDIFF_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() not in ("", "0", "false", "no")


def _load_builtin(name: str, module: str):
    """Import a built-in plugin module and check that it is steerdiff's own (beside the steerdiff package)."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise PluginError(name, "load", f"could not import built-in plugin {module!r}: {exc}") from exc
    ours = Path(__file__).resolve().parent.parent
    where = Path(getattr(mod, "__file__", "") or "").resolve()
    if ours not in where.parents:
        raise PluginError(name, "load", f"built-in plugin module {module!r} was imported from {where}, not from "
                          f"steerdiff's own installation at {ours}: another package shadows it")
    return mod


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, built on first use. Plugins hold no state in it: state is per run."""
    global _pm
    if _pm is not None:
        return _pm
    pm = _Manager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name, module in BUILTIN.items():
        pm.register(_load_builtin(name, module), name=name)
        _origins[name] = f"{module} (built-in)"
    enabled = {n.strip() for n in os.environ.get("STEERDIFF_PLUGINS", "").split(",") if n.strip()}
    for ep in entry_points(group=GROUP):
        if ep.value in BUILTIN.values() or pm.has_plugin(ep.name):
            continue  # steerdiff's own entry points, already registered by module
        if _autoload_disabled() and ep.name not in enabled:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party install must say which plugin broke
            raise PluginError(ep.name, "load", f"could not import {ep.value!r}: {exc}") from exc
        pm.register(plugin, name=ep.name)
        _origins[ep.name] = f"{ep.value} ({ep.dist.name} {ep.dist.version})" if ep.dist else ep.value
    _pm = pm
    _registry.clear()
    for name in pm.get_plugins():
        _register_types_of(pm, name)
    return pm


def _register_types_of(pm: pluggy.PluginManager, plugin: Any) -> None:
    """Ask one plugin's ``register_constraints`` (through pluggy: a subset caller of that plugin alone)."""
    pname = pm.get_name(plugin) or repr(plugin)

    def register(name: str, cls: type) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Constraint)):
            raise PluginError(pname, "register_constraints", f"{name!r} is not a steerdiff.Constraint subclass")
        if name in _registry and _registry[name][0] is not cls:
            raise PluginError(pname, "register_constraints", f"constraint type {name!r} is already registered by plugin {_registry[name][1]!r}")
        cls.type_name = cls.type_name or name
        _registry[name] = (cls, pname)

    others = [p for p in pm.get_plugins() if p is not plugin]
    _call(pm.subset_hook_caller("register_constraints", others), "register_constraints", None, {"register": register})


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object or module by hand (tests, notebooks); returns its name."""
    pm = get_plugin_manager()
    name = pm.register(plugin, name=name)
    _origins[name] = getattr(plugin, "__name__", type(plugin).__name__) + " (registered by hand)"
    _register_types_of(pm, plugin)
    return name


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered by hand, and the constraint types it registered."""
    pm = get_plugin_manager()
    pm.unregister(name=name)
    for key in [k for k, (_, owner) in _registry.items() if owner == name]:
        del _registry[key]


def constraint_types() -> dict[str, tuple[type[Constraint], str]]:
    """``{type name: (class, plugin name)}`` for every registered constraint type."""
    get_plugin_manager()
    return dict(_registry)


def make_constraint(spec: Constraint | dict[str, Any]) -> Constraint:
    """A constraint object from itself or from a ``{"type": name, ...}`` dict."""
    if isinstance(spec, Constraint):
        return spec
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConstraintError(f"a constraint must be a steerdiff.Constraint or a dict with a 'type' key, got {spec!r}")
    types = constraint_types()
    if spec["type"] not in types:
        raise ConstraintError(f"unknown constraint type {spec['type']!r}; registered types: {sorted(types) or 'none'}")
    return types[spec["type"]][0].from_dict(spec)


class _Call:
    """One :func:`call_each` call in progress: the hook, what each implementation returned, the ``after`` callback."""

    __slots__ = ("hook", "named", "after")

    def __init__(self, hook: str, after: Callable[[str, Any], None] | None):
        self.hook, self.after = hook, after
        self.named: list[tuple[str, Any]] = []


# the call_each call in progress in this thread / task (None outside one): the wrapped implementations record into it
_CALL: ContextVar[_Call | None] = ContextVar("steerdiff_hook_call", default=None)


def _named(fn: Callable[..., Any], pname: str, hook: str) -> Callable[..., Any]:
    """Hook implementation ``fn`` of plugin ``pname``, as pluggy calls it from now on.

    Inside a :func:`call_each` call of ``hook``: an exception that is not a :class:`SteerdiffError` becomes
    :class:`PluginError` (``plugin 'pname' in hook 'hook': Type: message``, chained to the original), the
    call's ``after(pname, result)`` runs, and a non-None result is recorded under ``pname``. Outside one it
    is ``fn`` itself (one context-variable read more). Arguments and result pass unchanged either way.
    """

    @functools.wraps(fn)
    def impl(*args: Any, **kwargs: Any) -> Any:
        call = _CALL.get()
        if call is None or call.hook != hook:
            return fn(*args, **kwargs)
        try:
            res = fn(*args, **kwargs)
        except SteerdiffError:
            raise
        except Exception as exc:
            raise PluginError(pname, hook, f"{type(exc).__name__}: {exc}") from exc
        if call.after is not None:
            call.after(pname, res)
        if res is not None:
            call.named.append((pname, res))
        return res

    return impl


class _Manager(pluggy.PluginManager):
    """pluggy's manager; :meth:`register` wraps each (non-wrapper) hook implementation with :func:`_named`.

    Hook wrappers are left exactly as written (pluggy drives their generators); what one raises is named
    by :func:`call_each`.
    """

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        pname = super().register(plugin, name)
        if pname is not None:
            for caller in self.get_hookcallers(plugin) or ():
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                        impl.function = _named(impl.function, pname, caller.name)  # type: ignore[misc]
        return pname


def call_each(hook: str, _after: Callable[[str, Any], None] | None = None, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call ``hook`` through pluggy (its wrappers and tracing included); ``[(plugin name, result)]`` back.

    ``kwargs`` are the hook's arguments (every one its spec names); pluggy gives each implementation the
    ones it asks for, in pluggy's order (tryfirst first, then last registered first). Returns the non-None
    results in that order, each with the plugin that returned it; a result that a hook wrapper put in the
    list is attributed to the hook's wrapper plugin(s). An exception that is not already a
    :class:`SteerdiffError` becomes :class:`PluginError` naming the plugin (the implementation, or the wrapper
    it came from) and the hook. ``_after(plugin name, result)``, when given, runs right after each
    implementation, inside the call (the loop uses it to tell which one plugin left a row with no commit).
    Not for ``firstresult`` hooks.
    """
    return _call(getattr(get_plugin_manager().hook, hook), hook, _after, kwargs)


def _call(caller: Any, hook: str, after: Callable[[str, Any], None] | None,
          kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """:func:`call_each` on one pluggy ``HookCaller`` (the full hook, or a subset of its plugins)."""
    call = _Call(hook, after)
    token = _CALL.set(call)
    try:
        out = caller(**kwargs)
    except SteerdiffError:
        raise
    except HookCallError as exc:  # an implementation asks for an argument this call does not give
        for impl in reversed(caller.get_hookimpls()):
            missing = [a for a in impl.argnames if a not in kwargs and repr(a) in str(exc)]
            if missing:
                raise PluginError(impl.plugin_name, hook, f"asks for unknown argument {missing[0]!r}") from None
        raise
    except Exception as exc:  # the implementations are named already: this came from a hook wrapper
        wrappers = _wrappers_at_fault(caller, exc)
        if not wrappers:
            raise
        raise PluginError("/".join(wrappers), hook, f"{type(exc).__name__}: {exc}") from exc
    finally:
        _CALL.reset(token)
    named = call.named
    if isinstance(out, list) and len(out) == len(named) and all(o is r for o, (_, r) in zip(out, named)):
        return named
    return _attribute(out if isinstance(out, list) else [out], named, caller)  # a wrapper changed the results


def _wrappers_at_fault(caller: Any, exc: BaseException) -> list[str]:
    """The hook wrapper(s) an exception escaping a hook call came from: the one whose code is in its
    traceback, else every wrapper of the hook (pluggy's own "did not yield" errors carry no wrapper frame)."""
    wrappers = [i for i in caller.get_hookimpls() if i.wrapper or i.hookwrapper]
    codes, tb = set(), exc.__traceback__
    while tb is not None:
        codes.add(tb.tb_frame.f_code)
        tb = tb.tb_next
    hit = [i.plugin_name for i in wrappers if getattr(i.function, "__code__", None) in codes]
    return hit or [i.plugin_name for i in wrappers]


def _attribute(out: list[Any], named: list[tuple[str, Any]], caller: Any) -> list[tuple[str, Any]]:
    """Name each result of a hook call whose list a wrapper changed (or replaced by one value or None): by
    the implementation that returned that object, else by the hook's wrapper plugins."""
    owner = {id(r): p for p, r in named}
    wrappers = "/".join(i.plugin_name for i in caller.get_hookimpls() if i.wrapper or i.hookwrapper) or "hook wrapper"
    return [(owner.get(id(r), wrappers), r) for r in out if r is not None]


def plugin_table() -> list[tuple[str, str, list[str]]]:
    """``[(plugin name, where it comes from, [constraint types])]`` for ``steerdiff plugins``."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in pm.list_name_plugin():
        origin = _origins.get(name, getattr(plugin, "__name__", type(plugin).__name__))
        types = sorted(t for t, (_, owner) in _registry.items() if owner == name)
        rows.append((name, origin, types))
    return rows
