"""Import rules of the layout, read from each module's syntax tree (``ast``), never from its text:

- the core (``steerdiff/``) never imports the plugins (``steerdiff_plugins``), at module level or inside a
  function, by ``import``, ``from ... import`` or ``importlib.import_module("...")``;
- no core module but the command line imports names from the package's ``__init__`` (``from . import x``
  where ``x`` is not a submodule), so the package's own imports never run in a circle;
- the core's modules import each other without cycles (function-level imports included).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "steerdiff"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(path: Path, source: str | None = None) -> list[tuple[int, str, list[str]]]:
    """``[(line, absolute module, [imported names])]`` for every import in the file (relative ones resolved;
    ``importlib.import_module`` / ``__import__`` with a constant string count as imports of that module)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source, filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module, [a.name for a in node.names]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.append((node.lineno, node.args[0].value, []))
    return out


def _plugin_imports(path: Path, source: str | None = None) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {mod}" for line, mod, _ in imports_of(path, source)
            if mod == "steerdiff_plugins" or mod.startswith("steerdiff_plugins.")]


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_never_imports_the_plugins():
    bad = [b for p in _core_files() for b in _plugin_imports(p)]
    assert not bad, "the core must not import steerdiff_plugins (use a hook or a registered type):\n" + "\n".join(bad)


def test_the_plugin_rule_sees_every_spelling():
    """The checker itself: each way of importing a plugin is caught, a mention in a string is not."""
    fake = CORE / "fake.py"
    for src in ("import steerdiff_plugins.regex", "from steerdiff_plugins import regex",
                "def f():\n    from steerdiff_plugins.schema.compiled import compile_schema",
                "import importlib\nm = importlib.import_module('steerdiff_plugins.json_schema')"):
        assert _plugin_imports(fake, src), src
    assert not _plugin_imports(fake, "'''see steerdiff_plugins.regex'''\nimport steerdiff.plugins")


def test_no_core_module_imports_from_the_package_init():
    submodules = {p.stem for p in CORE.glob("*.py")} | {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    bad = []
    for p in _core_files():
        if p.parent != CORE or p.name in ("__init__.py", "cli.py"):  # cli: the entry layer, reads __version__
            continue
        for line, mod, names in imports_of(p):
            if mod == "steerdiff" and any(n not in submodules for n in names):
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {names} from steerdiff/__init__.py")
    assert not bad, "\n".join(bad)


def test_core_modules_import_each_other_without_cycles():
    graph: dict[str, set[str]] = {}
    for p in _core_files():
        name = _module_name(p)
        deps = graph.setdefault(name, set())
        for _, mod, names in imports_of(p):
            for target in [mod] + [f"{mod}.{n}" for n in names]:
                if target.startswith("steerdiff.") and target != name and (
                        (ROOT / (target.replace(".", "/") + ".py")).exists()
                        or (ROOT / target.replace(".", "/") / "__init__.py").exists()):
                    deps.add(target)
    cycles, state = [], {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles in the core:\n" + "\n".join(cycles)
