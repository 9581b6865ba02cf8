#!/usr/bin/env python
"""Check that a run of the transfer benchmark reproduces a reference: every quantity the reference
states with a 95% interval (probe per arm and paired differences, fine-tuning, retrieval) has the
new run's mean inside that interval (strict), or the two runs' difference has a Welch 95% interval
containing 0 (two-sample), and the configs agree. Prints a table with both; exits 0 when the chosen
criterion (--criterion, default strict) holds, 1 when not, 2 on bad input.

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
    p.add_argument(
        "--label",
        default="",
        help="what the candidate run was (e.g. 'fresh clone of abc1234, 2-core guest'); kept in --json, "
        "where docs/transfer.md lists records saved as docs/bench_results/transfer_reproduction_*.json",
    )
    p.add_argument(
        "--criterion",
        choices=("strict", "two-sample"),
        default="strict",
        help="what the exit status follows: strict (new mean inside the reference's interval; a "
        "rerun of the same distribution misses about 9%% of quantities with 3 seeds) or two-sample "
        "(Welch interval of the difference contains 0)",
    )
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
            a.json,
            {
                "label": a.label,
                "reference_file": str(a.reference),
                "candidate_file": str(a.candidate),
                **result,
            },
        )
    ok = result["reproduced"] if a.criterion == "strict" else result["consistent"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
