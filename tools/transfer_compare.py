#!/usr/bin/env python
"""Check that a run of the transfer benchmark reproduces a reference: every quantity the reference
states with a 95% interval (probe per arm and paired differences, fine-tuning, retrieval) has the
new run's mean inside that interval, and the configs agree. Prints a table; exits 0 when reproduced,
1 when not, 2 on bad input.

    git show HEAD:docs/transfer.json > /tmp/ref.json     # before the run overwrites docs/
    python tools/transfer_bench.py
    python tools/transfer_compare.py /tmp/ref.json docs/transfer.json --json outputs/transfer/compare.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def _load(path: Path) -> dict:
    from pixvox.errors import UserError

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such file (a docs/transfer.json written by tools/transfer_bench.py)"
        ) from None
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path}: not valid JSON ({err}); rerun tools/transfer_bench.py to rewrite it"
        ) from err
    missing = [k for k in ("probe", "finetune", "retrieval", "config") if k not in data]
    if missing:
        raise UserError(
            f"{path}: missing {missing}; is it a docs/transfer.json from tools/transfer_bench.py?"
        )
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reference", type=Path, help="the stated run (e.g. the committed docs/transfer.json)")
    p.add_argument("candidate", type=Path, help="the new run's transfer.json")
    p.add_argument("--json", type=Path, help="also write the comparison here (atomically)")
    a = p.parse_args(argv)
    from pixvox.bench.transfer.compare import compare, table
    from pixvox.errors import UserError
    from pixvox.io.atomic import atomic_write_json

    try:
        result = compare(_load(a.reference), _load(a.candidate))
    except UserError as err:
        print(f"transfer_compare: error: {err}", file=sys.stderr)
        return 2
    print(table(result))
    if a.json:
        atomic_write_json(
            a.json, {"reference_file": str(a.reference), "candidate_file": str(a.candidate), **result}
        )
    return 0 if result["reproduced"] else 1


if __name__ == "__main__":
    sys.exit(main())
