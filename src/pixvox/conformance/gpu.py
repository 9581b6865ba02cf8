"""Which upstream tests need a CUDA GPU, read from their source (the suite does not mark them).

The engine's suite mixes three kinds of test bodies:

- GPU-only: the body starts with ``if not torch.cuda.is_available(): return`` (or
  ``ME.is_cuda_available()``) and so passes without
  testing anything on a machine without a GPU; reported as skipped instead of passed.
- unguarded: CUDA is used (``device="cuda"``, ``device=0``, ``.cuda()``, ``.to(0)``,
  ``torch.cuda.DoubleTensor``) before any such guard; without a GPU it errors ("Torch not compiled with CUDA"), so it is skipped.
- CPU then unguarded GPU: a CPU part (real checks) followed by CUDA use without a guard; these run,
  and a failure that is only "no CUDA here", raised by the GPU part, counts as the CPU part passing.
- CPU: everything else, including tests with a CPU part followed by a guarded GPU part; these run.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Callable

GPU_ONLY = "gpu-only"
UNGUARDED = "unguarded"
CPU_THEN_GPU = "cpu-then-gpu"


def _is_availability_check(node: ast.AST) -> bool:
    """``torch.cuda.is_available()`` (or ``cuda.is_available()``), or the engine's own
    ``ME.is_cuda_available()`` (several tests guard their GPU part with it)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "is_cuda_available"
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "is_cuda_available":
        return True
    return func.attr == "is_available" and isinstance(func.value, ast.Attribute) and func.value.attr == "cuda"


def _is_no_gpu_return(stmt: ast.stmt) -> bool:
    """``if not torch.cuda.is_available(): return``."""
    return (
        isinstance(stmt, ast.If)
        and isinstance(stmt.test, ast.UnaryOp)
        and isinstance(stmt.test.op, ast.Not)
        and _is_availability_check(stmt.test.operand)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], ast.Return)
    )


def _mentions_cuda(node: ast.AST) -> bool:
    """Whether ``node`` uses CUDA outside a branch taken only when a GPU is available."""
    if _is_availability_check(node):
        return False
    if isinstance(node, (ast.If, ast.IfExp)) and _is_availability_check(node.test):
        # `x if torch.cuda.is_available() else y` / `if torch.cuda.is_available(): ...`
        orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
        return any(_mentions_cuda(n) for n in orelse)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value == "cuda" or node.value.startswith("cuda:")
    if isinstance(node, ast.Attribute) and node.attr == "cuda":
        return True
    if isinstance(node, ast.Call) and _device_index(node):
        return True
    return any(_mentions_cuda(child) for child in ast.iter_child_nodes(node))


def _device_index(call: ast.Call) -> bool:
    """``f(..., device=0)`` or ``x.to(0)``: an integer device is a CUDA device index."""

    def is_int(n: ast.AST) -> bool:
        return isinstance(n, ast.Constant) and type(n.value) is int

    if any(kw.arg == "device" and is_int(kw.value) for kw in call.keywords):
        return True
    return isinstance(call.func, ast.Attribute) and call.func.attr == "to" and any(map(is_int, call.args))


def _is_trivial(stmt: ast.stmt) -> bool:
    """A docstring, ``pass`` or a ``print(...)`` call: nothing that tests the engine."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr):
        value = stmt.value
        if isinstance(value, ast.Constant):
            return True
        return isinstance(value, ast.Call) and getattr(value.func, "id", None) == "print"
    return False


def classify_source(source: str) -> str | None:
    """:data:`GPU_ONLY`, :data:`UNGUARDED`, :data:`CPU_THEN_GPU` or None (a CPU test) for one test
    function's source."""
    tree = ast.parse(textwrap.dedent(source))
    func = tree.body[0]
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise ValueError("expected the source of one function")
    for i, stmt in enumerate(func.body):
        if _is_no_gpu_return(stmt):
            return GPU_ONLY if all(_is_trivial(s) for s in func.body[:i]) else None
        if _mentions_cuda(stmt):
            return UNGUARDED if all(_is_trivial(s) for s in func.body[:i]) else CPU_THEN_GPU
    return None


def classify(func: Callable) -> str | None:
    """:func:`classify_source` of a test function or method object."""
    return classify_source(inspect.getsource(func))
