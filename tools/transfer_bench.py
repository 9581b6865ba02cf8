#!/usr/bin/env python
"""The controlled transfer benchmark (issue 11; docs/transfer.md): pretrain the default arms of
configs/transfer (or reuse finished runs with the same resolved config), probe frozen features on
rooms never trained on, measure held-out retrieval and fine-tuning, and write docs/transfer.md,
docs/transfer.json and docs/images/transfer.png.

    python tools/transfer_bench.py --quick                 # minutes on 2 cores: the pipeline, few steps
    python tools/transfer_bench.py                         # the default comparison (52-60 min on 2 cores)
    python tools/transfer_bench.py --jobs 1                # one task at a time (default: one per core)
    python tools/transfer_bench.py --pretrain-data my/seq --train-rooms a/scene1 --test-rooms b/scene2
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
# One compute thread, set before torch starts its OpenMP pool (2-core machines: see compare_init.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from pixvox.bench.transfer.bench import BenchOptions

    d = BenchOptions()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--pretrain-data", nargs="+", metavar="DIR", help=f"RGB-D sequences (default {d.pretrain_data})"
    )
    p.add_argument(
        "--train-rooms", nargs="+", metavar="PATH", help="Pointcept scene folders or mmdetection3d scenes"
    )
    p.add_argument("--test-rooms", nargs="+", metavar="PATH", help="as --train-rooms; never one of them")
    p.add_argument(
        "--arms",
        nargs="+",
        help="arm names (configs/transfer/<arm>.yaml; default: every arm without transfer.default: false)",
    )
    p.add_argument("--seeds", type=int, nargs="+", help=f"pretraining/probe seeds (default {d.seeds})")
    p.add_argument("--steps", type=int, help=f"pretraining steps per arm (default {d.steps})")
    p.add_argument(
        "--finetune-budgets",
        type=int,
        nargs="*",
        help=f"labeled points per room (default {d.finetune_budgets}; none: skip)",
    )
    p.add_argument("--finetune-seeds", type=int, nargs="+", help=f"default {d.finetune_seeds}")
    p.add_argument("--finetune-steps", type=int, help=f"default {d.finetune_steps}")
    p.add_argument("--probe-rows", type=int, help="labeled voxels per training room for the probe (0 = all)")
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        metavar="KEY=VALUE",
        help="override every arm's pretraining config",
    )
    p.add_argument(
        "--finetune-set",
        dest="finetune_overrides",
        nargs="+",
        metavar="KEY=VALUE",
        help=f"override the fine-tuning recipe ({d.finetune_recipe}) for scratch and pretrained alike",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help="tasks side by side: training runs and evaluations (default 0: the usable cores, as each uses 1 thread)",
    )
    p.add_argument("--out-dir", help=f"runs, prepared data and logs (default {d.out_dir})")
    p.add_argument("--docs-dir", default="docs", help="where transfer.md/json and images/transfer.png go")
    p.add_argument(
        "--ablation",
        metavar="NAME",
        help="a screened change (with --set or --steps): add its row to docs/transfer_ablations.json and "
        "the table of docs/transfer.md instead of replacing the main report (its own report goes under "
        "--out-dir/ablations/NAME)",
    )
    p.add_argument(
        "--quick", action="store_true", help="few steps, one sequence, 20-point fine-tuning (minutes)"
    )
    return p.parse_args(argv)


#: options of the tool that are not BenchOptions fields
TOOL_ONLY = ("docs_dir", "ablation", "quick")


def options(a: argparse.Namespace):
    """The BenchOptions of parsed arguments: the mode's defaults, then every option given."""
    from pixvox.bench.transfer.bench import BenchOptions, quick

    opts = quick(BenchOptions()) if a.quick else BenchOptions()
    for key, value in vars(a).items():
        if key not in TOOL_ONLY and value is not None:
            setattr(opts, key, value)
    return opts


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    os.chdir(REPO)
    from pixvox.bench.transfer.bench import run_bench
    from pixvox.bench.transfer.report import write_report
    from pixvox.errors import UserError

    opts = options(a)
    finetune_change = a.finetune_overrides is not None or a.finetune_steps is not None
    if a.ablation and finetune_change and (a.overrides is not None or a.steps is not None):
        print(
            "transfer_bench: error: an --ablation screens one change: a pretraining one (--set, --steps) "
            "or a fine-tuning one (--finetune-set, --finetune-steps), not both",
            file=sys.stderr,
        )
        return 2
    # Every job's log lines go to one file; the console keeps one line per step of the benchmark.
    Path(opts.out_dir).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        filename=Path(opts.out_dir) / "transfer.log",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = " ".join(
        [
            "python tools/transfer_bench.py",
            *(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])),
        ]
    )
    try:
        result = run_bench(opts)
    except UserError as err:
        print(f"transfer_bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"transfer_bench: interrupted ({err}); rerun the same command to continue", file=sys.stderr)
        return 130
    docs = Path(a.docs_dir)
    if a.ablation:
        import json

        from pixvox.bench.transfer.ablation import ablation_row, finetune_row, load_rows, save_row
        from pixvox.bench.transfer.report import rerender

        write_report(result, Path(opts.out_dir) / "ablations" / a.ablation, command)
        main_json = docs / "transfer.json"
        baseline = json.loads(main_json.read_text()) if main_json.is_file() else None
        if finetune_change:
            row = finetune_row(a.ablation, command, result, baseline)
        else:
            row = ablation_row(a.ablation, command, result, baseline, load_rows(docs))
        save_row(docs, row)
        if baseline is not None:
            rerender(docs)
    else:
        write_report(result, docs, command)
    print((docs / "transfer.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
