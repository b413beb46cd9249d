"""The package keeps its shape: no import cycles, lower layers never import higher ones, no module imports
another package's private name, and the engine knows no kind of run."""

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# bottom to top; a module may import its own package, a lower layer, and the leaf modules (rank 0)
LAYERS = {
    "errors": 0, "_io": 0, "_images": 0, "_signals": 0, "_options": 0, "_machine": 0, "_optim": 0,
    "nn": 1, "models": 2, "inspect": 3, "data": 3, "viz": 4, "report": 5, "explain": 5, "train": 6,
    "classify": 7, "ae": 7, "segment": 7, "transfer": 8, "experiments": 9, "run": 10, "cli": 11, "__main__": 12,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "cnnlab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """Every import of a cnnlab module anywhere in the file (functions included): (module, names)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("cnnlab")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.startswith("cnnlab"):
                found.append((base, [a.name for a in node.names]))
    return found


@functools.cache
def _edges() -> dict[str, set[str]]:
    """Module -> the cnnlab modules it makes Python import (a submodule's parent packages too, except the
    importer's own ancestors, which are already being imported)."""
    edges = {}
    for name, path in MODULES.items():
        out = set()
        for base, names in _imports(name, path):
            for target in [base] + [f"{base}.{n}" for n in names]:
                parts = target.split(".")
                for i in range(2, len(parts) + 1):
                    candidate = ".".join(parts[:i])
                    if candidate in MODULES and candidate != name and not (name + ".").startswith(candidate + "."):
                        out.add(candidate)
        edges[name] = out
    return edges


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[1]]


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles():
    cycles = find_cycles(_edges())
    assert not cycles, " | ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_every_top_level_module_has_a_layer():
    assert {m.split(".")[1] for m in MODULES if m != "cnnlab"} <= set(LAYERS)


def test_lower_layers_never_import_higher_ones():
    wrong = [f"{a} -> {b}" for a, targets in _edges().items() if a != "cnnlab" for b in targets
             if b.split(".")[1] != a.split(".")[1] and _layer(b) >= _layer(a) and _layer(b) > 0]
    assert not wrong, wrong


@pytest.mark.parametrize("kind", ["classify", "transfer", "ae", "segment", "experiments", "run", "cli"])
def test_the_engine_knows_no_kind_of_run(kind):
    engine = [m for m in MODULES if m.startswith("cnnlab.train")]
    assert not [f"{m} -> {t}" for m in engine for t in _edges()[m] if t.split(".")[1] == kind]


def test_no_module_imports_another_packages_private_name():
    """A name starting with '_' (a module or an object) may be imported from the importer's own package or an
    ancestor of it (the root's leaf modules, cnnlab._io), never from another package."""
    wrong = []
    for name, path in MODULES.items():
        own = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for base, names in _imports(name, path):
            parts = base.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = parts[:i]
                    if own[:len(owner)] != owner:
                        wrong.append(f"{name}: {base}")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            owner = parts if MODULES.get(base, Path()).name == "__init__.py" else parts[:-1]  # base's package
            if private and own[:len(owner)] != owner:
                wrong.append(f"{name}: {base}.{private}")
    assert not wrong, wrong
