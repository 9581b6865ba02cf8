"""The report from a hand-made result: paired intervals, targets, the three files."""

from __future__ import annotations

import json

import pytest
from scipy import stats

from pixvox.bench.transfer.report import per_seed, summarize, write_report


def _result():
    probe = []
    for seed, (r, p, rt) in enumerate([(0.10, 0.25, 0.20), (0.12, 0.26, 0.24), (0.11, 0.30, 0.22)]):
        for room, shift in (("a", 0.0), ("b", 0.02)):
            probe += [
                {"arm": "random", "seed": seed, "test_room": room, "miou": r + shift},
                {"arm": "ppkt", "seed": seed, "test_room": room, "miou": p + shift},
                {"arm": "random_teacher", "seed": seed, "test_room": room, "miou": rt + shift},
            ]
    finetune = [
        {"init": init, "budget": 20, "seed": s, "miou": m, "curve": [[5, m - 0.01], [10, m]]}
        for s in range(3)
        for init, m in (("scratch", 0.05 + 0.01 * s), ("ppkt", 0.07 + 0.012 * s))
    ]
    retrieval = [
        {"arm": a, "seed": s, "top1": t + 0.001 * s, "chance": 0.001}
        for s in range(3)
        for a, t in (("ppkt", 0.05), ("random_teacher", 0.04))
    ]
    config = {
        "quick": True,
        "pretrain_data": ["x"],
        "pretrain_fusions": {"train": 8, "heldout": 2},
        "heldout_fraction": 0.2,
        "arms": ["random", "ppkt", "random_teacher"],
        "steps": 3,
        "seeds": [0, 1, 2],
        "train_rooms": ["t/a0"],
        "test_rooms": ["t/a", "t/b"],
        "finetune_steps": 10,
        "finetune_budgets": [20],
        "finetune_seeds": [0, 1, 2],
        "probe_rows": 0,
    }
    conv = [
        {
            "arm": "ppkt",
            "seed": 0,
            "grad_norm": 1e-6,
            "last_loss_change": 1e-9,
            "iterations": 9,
            "converged": True,
        }
    ]
    return {
        "probe": probe,
        "finetune": finetune,
        "retrieval": retrieval,
        "config": config,
        "convergence": conv,
        "wall_seconds": 1.0,
    }


def test_paired_difference_is_over_seed_means_of_the_test_rooms():
    s = summarize(_result())
    ppkt = per_seed(_result()["probe"], "arm", arm="ppkt")
    assert ppkt == pytest.approx({0: 0.26, 1: 0.27, 2: 0.31})
    d = s["diff"]["ppkt - random_teacher"]
    ref = stats.ttest_rel([0.25, 0.26, 0.30], [0.20, 0.24, 0.22]).confidence_interval(0.95)
    assert abs(d.low - ref.low) < 1e-9 and abs(d.high - ref.high) < 1e-9
    gain = s["finetune"][20]["gain"]
    assert abs(gain.mean - (0.02 + 0.002)) < 1e-9


def test_writes_the_three_files_and_states_the_targets(tmp_path):
    write_report(_result(), tmp_path, "python tools/transfer_bench.py --quick")
    md = (tmp_path / "transfer.md").read_text()
    assert "(quick mode)" in md and "ppkt - random_teacher" in md
    # 0.273 / 0.11 ≈ 2.5x: met; ppkt - random_teacher = 5 points but its interval crosses 0: not met
    assert "≥ 2× `random`: met" in md
    assert "≥ 3 mIoU, interval above 0: NOT met" in md
    data = json.loads((tmp_path / "transfer.json").read_text())
    assert {"probe", "finetune", "retrieval", "config"} <= set(data)
    assert all(0 <= r["miou"] <= 1 for r in data["probe"])
    assert (tmp_path / "images" / "transfer.png").stat().st_size > 1000


def test_an_ablation_row_is_compared_with_the_main_run_by_seed(tmp_path):
    from pixvox.bench.transfer import ablation
    from pixvox.bench.transfer.report import rerender

    main = _result()
    write_report(main, tmp_path, "python tools/transfer_bench.py --quick")
    changed = _result()
    for r in changed["probe"]:
        if r["arm"] == "ppkt":
            r["miou"] += 0.05 + 0.001 * r["seed"]  # better by 5 points on every seed
    changed["config"]["overrides"] = ["loss.terms.ppkt.temperature=0.1"]
    row = ablation.ablation_row(
        "tau 0.1", "cmd", changed, json.loads((tmp_path / "transfer.json").read_text())
    )
    d = row["ppkt_minus_baseline_ppkt"]
    assert d["mean"] == pytest.approx(0.051) and d["low"] > 0 and ablation.kept(row)
    ablation.save_row(tmp_path, row)
    ablation.save_row(tmp_path, {**row, "name": "same again", "ppkt_minus_baseline_ppkt": None})
    made = json.loads((tmp_path / "transfer.json").read_text())["date"]
    assert made and f"on {made} UTC" in (tmp_path / "transfer.md").read_text()
    (tmp_path / "transfer.json").write_text(
        json.dumps({**json.loads((tmp_path / "transfer.json").read_text()), "date": "2001-02-03 04:05"})
    )
    rerender(tmp_path)
    md = (tmp_path / "transfer.md").read_text()
    assert "on 2001-02-03 04:05 UTC" in md  # the main run's date, not the time of the rerender
    assert "| tau 0.1 (`loss.terms.ppkt.temperature=0.1`) |" in md and "| kept |" in md
    assert "| same again" in md and "| dropped |" in md


def test_flat_verdict_needs_the_whole_interval_inside_the_band():
    from pixvox.bench.transfer.report import flat_verdict
    from pixvox.bench.transfer.stats import t_interval

    assert flat_verdict(t_interval([0.001, -0.002, 0.0005])).startswith("yes")
    assert flat_verdict(t_interval([0.02, 0.01, 0.03])).startswith("not shown")
    assert flat_verdict(t_interval([0.002])).startswith("unknown")


def test_a_change_at_another_step_budget_is_compared_with_the_plain_row_of_that_budget():
    from pixvox.bench.transfer import ablation

    main = _result()  # 3 steps
    main["config"]["quick"] = False
    longer = _result()
    longer["config"]["steps"] = 50
    plain = ablation.ablation_row("50 steps", "c1", longer, main)
    # nothing else at 50 steps: the budget is the change; the label says which main run it was
    assert plain["reference"] == "main run, 3 steps"
    main["config"]["quick"] = True
    assert (
        ablation.ablation_row("50 steps", "c1", longer, main)["reference"] == "main run, quick mode, 3 steps"
    )
    # a dated main run (every one since 2026-12-02) is named with its day: the main run is remade
    main["date"] = "2026-12-04 08:45"
    assert (
        ablation.ablation_row("50 steps", "c1", longer, main)["reference"]
        == "main run of 2026-12-04, quick mode, 3 steps"
    )
    del main["date"]
    changed = _result()
    changed["config"].update(steps=50, overrides=["teacher.head=linear"])
    for r in changed["probe"]:
        if r["arm"] == "ppkt":
            r["miou"] -= 0.02 + 0.001 * r["seed"]
    row = ablation.ablation_row("linear head", "c2", changed, main, [plain])
    assert row["reference"] == "50 steps"
    assert row["ppkt_minus_baseline_ppkt"]["mean"] == pytest.approx(-0.021)
    assert not ablation.kept(row)


def test_objective_arms_are_paired_against_ppkt_and_only_a_clear_win_is_kept(tmp_path):
    result = _result()
    # masked_2d: ppkt - 0.05 on every seed, no retrieval; ppkt_f5: ppkt + 0.02..0.04 per seed
    extra = {"masked_2d": (-0.05, -0.05, -0.05), "ppkt_f5": (0.02, 0.03, 0.04)}
    rows = [r for r in result["probe"] if r["arm"] == "ppkt"]
    for arm, deltas in extra.items():
        result["probe"] += [{**r, "arm": arm, "miou": r["miou"] + deltas[r["seed"]]} for r in rows]
    result["retrieval"] += [{"arm": "ppkt_f5", "seed": s, "top1": 0.06, "chance": 0.001} for s in range(3)]
    result["config"]["arms"] += list(extra)
    result["config"]["arm_fusions"] = {"ppkt_f5": {"frames_per_sample": 5, "frame_stride": 5, "train": 4}}
    s = write_report(result, tmp_path, "cmd")
    assert set(s["objectives"]) == {"masked_2d", "ppkt_f5"}  # the product and its controls are not
    f5 = s["objectives"]["ppkt_f5"]["minus_ppkt"]
    ref = stats.ttest_rel([0.02, 0.03, 0.04], [0.0, 0.0, 0.0]).confidence_interval(0.95)
    assert abs(f5.low - ref.low) < 1e-9 and abs(f5.high - ref.high) < 1e-9 and f5.low > 0
    rt = s["objectives"]["masked_2d"]["minus_random_teacher"]
    assert rt.mean == pytest.approx((0.25 + 0.26 + 0.30 - 0.20 - 0.24 - 0.22) / 3 - 0.05)
    md = (tmp_path / "transfer.md").read_text()
    table = md.split("## Objectives against ppkt")[1].split("## ")[0]
    assert "| ppkt_f5 |" in table and "kept: beats ppkt" in table.split("| ppkt_f5 |")[1].splitlines()[0]
    assert "not kept: below ppkt" in table.split("| masked_2d |")[1].splitlines()[0]
    assert "| masked_2d | n/a (no PPKT term" in md.split("## Held-out retrieval")[1]
    assert "`ppkt_f5` pretrains on its own fusions of 5 neighbouring frames" in md
    probe_table = md.split("## Linear probe")[1].split("## ")[0]
    assert "| ppkt_f5 |" in probe_table and "| masked_2d |" in probe_table
    saved = json.loads((tmp_path / "transfer.json").read_text())
    assert saved["summary"]["objectives"]["ppkt_f5"]["minus_ppkt"]["low"] > 0


def test_a_fine_tuning_recipe_row_is_paired_with_the_main_recipe_and_rendered_apart(tmp_path):
    from pixvox.bench.transfer import ablation
    from pixvox.bench.transfer.report import rerender

    write_report(_result(), tmp_path, "python tools/transfer_bench.py --quick")
    changed = _result()
    lift = {0: 0.010, 1: 0.014, 2: 0.013}  # ppkt fine-tuned with the change, per seed; scratch unchanged
    for r in changed["finetune"]:
        if r["init"] == "ppkt":
            r["miou"] += lift[r["seed"]]
    changed["config"]["finetune_overrides"] = ["optim.lr=0.05"]
    baseline = json.loads((tmp_path / "transfer.json").read_text())
    row = ablation.finetune_row("head lr", "cmd", changed, baseline)
    e = row["budgets"]["20"]
    ref = stats.ttest_1samp(list(lift.values()), 0).confidence_interval(0.95)
    assert e["ppkt_minus_main"]["low"] == pytest.approx(ref.low, abs=1e-6) and ref.low > 0
    assert e["scratch_minus_main"]["mean"] == pytest.approx(0.0, abs=1e-12)
    gain = [0.07 + 0.012 * s + lift[s] - (0.05 + 0.01 * s) for s in range(3)]
    assert e["ppkt_minus_scratch"]["mean"] == pytest.approx(sum(gain) / 3, abs=1e-6)
    assert ablation.finetune_kept(row)
    ablation.save_row(tmp_path, row)
    flat = ablation.finetune_row("no lift", "cmd", {**_result(), "config": changed["config"]}, baseline)
    assert not ablation.finetune_kept(flat)  # the main recipe's own numbers: no difference, not kept
    ablation.save_row(tmp_path, flat)
    rerender(tmp_path)
    md = (tmp_path / "transfer.md").read_text()
    assert "### Fine-tuning recipe" in md
    assert "| head lr (`optim.lr=0.05`) | 10 | 20 |" in md and "| no lift (`optim.lr=0.05`) | 10 | 20 |" in md
    pretrain_table = md.split("## Ablations")[1].split("### Fine-tuning recipe")[0]
    assert "head lr" not in pretrain_table  # the pretraining table keeps to pretraining rows


def test_saved_rows_keep_hand_written_notes_readable(tmp_path):
    from pixvox.bench.transfer import ablation

    note = "ppkt −0.4 [−2.8, +2.1], τ 0.4, 1×1 head"
    ablation.save_row(tmp_path, {"name": "x", "kind": "finetune", "note": note})
    text = (tmp_path / ablation.FILE).read_text(encoding="utf-8")
    assert note in text and "\\u2212" not in text  # as written by hand, not escaped
    assert ablation.load_rows(tmp_path)[0]["note"] == note
