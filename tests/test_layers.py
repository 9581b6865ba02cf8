"""The package's imports flow one way (docs/architecture.md): no part of ``pixvox`` imports a part that
imports it back, and the package never imports the command-line folders ``data_prep/`` or ``tools/``."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pixvox"


def _part(module: str) -> str | None:
    """``pixvox.engine.job`` → ``engine``; ``pixvox.comm`` → ``comm``; the package root → None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "pixvox" and len(parts) > 1 else None


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Modules imported when the file runs: every import statement except those under
    ``if TYPE_CHECKING:`` (annotations only), including imports inside functions."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _graph() -> dict[str, dict[str, list[str]]]:
    """``{part: {imported part: [files]}}`` over the package's runtime imports."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        me = _part(".".join(rel.with_suffix("").parts))
        for module in _runtime_imports(ast.parse(path.read_text(), str(path))):
            other = _part(module)
            if me is not None and other is not None and other != me and (PACKAGE / other).exists():
                graph[me][other].append(str(rel))
            elif other is None and module.split(".")[0] in ("data_prep", "tools"):
                graph[me or "pixvox"][module].append(str(rel))
    return graph


def test_no_two_parts_of_the_package_import_each_other():
    graph = _graph()
    loops = sorted(
        f"pixvox.{a} ⇄ pixvox.{b}: {sorted(set(graph[a][b]))} and {sorted(set(graph[b][a]))}"
        for a in graph
        for b in graph[a]
        if a < b and a in graph.get(b, {})
    )
    assert not loops, "imports that run both ways:\n" + "\n".join(loops)


def test_the_package_never_imports_the_command_line_folders():
    bad = [
        f"{files} import {target}"
        for targets in _graph().values()
        for target, files in targets.items()
        if target.split(".")[0] in ("data_prep", "tools")
    ]
    assert not bad, bad


def test_the_import_reader_counts_lazy_imports_and_skips_type_checking():
    """The import reader itself: a lazy import counts, one under TYPE_CHECKING does not."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pixvox.pretrain.model import PretrainNet\n"
        "def f():\n    from pixvox.finetune.run import FinetuneJob\n"
    )
    got = _runtime_imports(ast.parse(src))
    assert "pixvox.finetune.run" in got and not any(m.startswith("pixvox.pretrain") for m in got)
