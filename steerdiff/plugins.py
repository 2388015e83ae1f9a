"""The plugin manager: built-in plugins, entry-point discovery, constraint registry, hook calls that name plugins.

Built-in plugins are found by what they are: the modules of steerdiff's own ``steerdiff_plugins`` package
(``BUILTIN``), imported by module name and checked to sit next to the ``steerdiff`` package, never by a
distribution name (anyone can publish a distribution called "steerdiff"). Third-party plugins come
through the ``steerdiff`` entry-point group. ``STEERDIFF_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the
built-ins (third-party ones are then enabled one by one with ``STEERDIFF_PLUGINS=name,name``).
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

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
    pm = pluggy.PluginManager(GROUP)
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
    pname = pm.get_name(plugin) or repr(plugin)
    for impl in pm.hook.register_constraints.get_hookimpls():
        if impl.plugin is not plugin:
            continue

        def register(name: str, cls: type, _owner: str = pname) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Constraint)):
                raise PluginError(_owner, "register_constraints", f"{name!r} is not a steerdiff.Constraint subclass")
            if name in _registry and _registry[name][0] is not cls:
                raise PluginError(_owner, "register_constraints", f"constraint type {name!r} is already registered by plugin {_registry[name][1]!r}")
            cls.type_name = cls.type_name or name
            _registry[name] = (cls, _owner)

        impl.function(register)


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


def call_each(hook: str, _after=None, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of ``hook`` with the arguments it asks for.

    Returns ``[(plugin name, result)]`` for non-None results. An exception that is not already a
    :class:`SteerdiffError` is wrapped in :class:`PluginError` naming the plugin and the hook.
    ``_after(plugin name, result)``, when given, runs after each implementation (the loop uses it to
    tell which one plugin left a row with no commit).
    """
    pm = get_plugin_manager()
    out = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):  # pluggy order: tryfirst first, LIFO
        pname = impl.plugin_name
        try:
            res = impl.function(*[kwargs[a] for a in impl.argnames])
        except SteerdiffError:
            raise
        except KeyError as exc:
            raise PluginError(pname, hook, f"asks for unknown argument {exc}") from None
        except Exception as exc:
            raise PluginError(pname, hook, f"{type(exc).__name__}: {exc}") from exc
        if _after is not None:
            _after(pname, res)
        if res is not None:
            out.append((pname, res))
    return out


def plugin_table() -> list[tuple[str, str, list[str]]]:
    """``[(plugin name, where it comes from, [constraint types])]`` for ``steerdiff plugins``."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in pm.list_name_plugin():
        origin = _origins.get(name, getattr(plugin, "__name__", type(plugin).__name__))
        types = sorted(t for t, (_, owner) in _registry.items() if owner == name)
        rows.append((name, origin, types))
    return rows
