"""Tables and plots of experiments/results/*.json: rewrites the part of EXPERIMENTS.md between
`<!-- results:begin -->` and `<!-- results:end -->` and writes experiments/curves.png.

    .venv/bin/python experiments/report.py
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
RULES = ["fedavg", "flora-na-layer", "flora-na-model", "svd", "fedex", "centralized", "local"]
NAMES = {"fedavg": "FedIT (fedavg)", "flora-na-layer": "FLoRA-NA layer", "flora-na-model": "FLoRA-NA model",
         "svd": "svd (rank 8)", "fedex": "FedEx-LoRA", "centralized": "centralized (upper)", "local": "local only (lower)"}  # fmt: skip
SPLITS = ["iid", "a0.3", "a0.1"]
SPLIT_NAMES = {"iid": "IID", "a0.3": "Dirichlet 0.3", "a0.1": "Dirichlet 0.1"}


def load() -> Dict[str, Dict[str, List[Dict[str, Any]]]]:
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((HERE / "results").glob("*-seed*.json")):
        if re.search(r"-r\d+\.json$", path.name):  # short runs with --rounds are not the table's
            continue
        result = json.loads(path.read_text())
        for split in SPLITS if result["split"] == "pooled" else [result["split"]]:  # centralized: every row
            runs[split][result["rule"]].append(result)
    return runs


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return ""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{100 * mean:.1f} (n=1)"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{100 * mean:.1f} ± {100 * std:.1f} (n={len(values)})"


def average(values: Sequence[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def fmt(value: Optional[float], pattern: str) -> str:
    return "" if value is None else format(value, pattern)


def accuracy_table(runs: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> List[str]:
    lines = ["| rule | " + " | ".join(SPLIT_NAMES[s] for s in SPLITS) + " |", "|---|" + "---|" * len(SPLITS)]
    for rule in RULES:
        cells = [mean_std([r["final_accuracy"] for r in runs[s][rule]]) for s in SPLITS]
        lines.append(f"| {NAMES[rule]} | " + " | ".join(cells) + " |")
    return lines


def divergence_table(runs: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> List[str]:
    """Per split: the divergence of what clients receive, round 1 / mean over rounds / last, and
    the FedAvg error and rank-8 floor on the same replies (mean over rounds and seeds)."""
    lines = ["| split | rule | divergence round 1 | mean over rounds | last round | FedAvg on the same replies (mean) | floor (mean) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for split in SPLITS:
        for rule in RULES[:5]:
            results = runs[split][rule]
            if not results:
                continue
            first = average([r["rounds"][0]["divergence"] for r in results])
            every = average([average([x["divergence"] for x in r["rounds"]]) for r in results])
            last = average([r["rounds"][-1]["divergence"] for r in results])
            fedavg = average([average([x["fedavg_error"] for x in r["rounds"]]) for r in results])
            floor = average([average([x["floor"] for x in r["rounds"]]) for r in results])
            lines.append(f"| {SPLIT_NAMES[split]} | {NAMES[rule]} | {fmt(first, '.4f')} | {fmt(every, '.4f')} | {fmt(last, '.4f')} | {fmt(fedavg, '.4f')} | {fmt(floor, '.4f')} |")
    return lines


def cost_table(runs: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> List[str]:
    lines = ["| rule | aggregate_train (ms) | of which fedlora merge (ms) | FedAvg comparison merge (ms) | Flower FedAvg on the same replies (ms) | clients' training, sum (s) | slowest client (s) | up per round (KB) | down per round (KB) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for rule in RULES[:5]:
        rows = [x for split in SPLITS for r in runs[split][rule] for x in r["rounds"]]
        if not rows:
            continue
        ms = lambda key: 1000 * sum(x[key] for x in rows) / len(rows)  # noqa: E731
        train = sum(sum(x["client_train_seconds"]) for x in rows) / len(rows)
        slowest = sum(max(x["client_train_seconds"]) for x in rows) / len(rows)
        up = sum(x["bytes_up"] for x in rows) / len(rows) / 1024
        down = sum(x["bytes_down"] for x in rows) / len(rows) / 1024
        lines.append(f"| {NAMES[rule]} | {ms('aggregate_seconds'):.0f} | {ms('merge_seconds'):.0f} | {ms('compare_seconds'):.0f} | {ms('flower_fedavg_seconds'):.0f} | {train:.1f} | {slowest:.2f} | {up:.0f} | {down:.0f} |")
    return lines


def runs_list(runs: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> List[str]:
    done = []
    for split in SPLITS:
        for rule in RULES:
            seeds = sorted(r["seed"] for r in runs[split][rule])
            if seeds:
                done.append(f"{rule} {split} seeds {','.join(map(str, seeds))}")
    return ["Runs in this table: " + "; ".join(done) + "."]


def plot(runs: Dict[str, Dict[str, List[Dict[str, Any]]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = [s for s in SPLITS if any(runs[s].values())]
    if not splits:
        return
    figure, axes = plt.subplots(2, len(splits), figsize=(4.2 * len(splits), 6.4), squeeze=False)
    for column, split in enumerate(splits):
        top, bottom = axes[0][column], axes[1][column]
        for rule in RULES:
            results = runs[split][rule]
            if not results:
                continue
            rounds = sorted({x["round"] for r in results for x in r["rounds"] if "accuracy" in x})
            series = [average([next((x["accuracy"] for x in r["rounds"] if x["round"] == n and "accuracy" in x), None) for r in results]) for n in rounds]
            top.plot(rounds, series, marker="." if rule != "local" else "o", label=NAMES[rule])
            if rule in RULES[:5] and rule != "fedex":
                rounds = [x["round"] for x in results[0]["rounds"]]
                div = [average([r["rounds"][n - 1]["divergence"] for r in results]) for n in rounds]
                bottom.plot(rounds, div, marker=".", label=NAMES[rule])
        if runs[split]["fedavg"] or runs[split]["flora-na-layer"]:
            any_run = (runs[split]["flora-na-layer"] or runs[split]["fedavg"])
            rounds = [x["round"] for x in any_run[0]["rounds"]]
            floor = [average([r["rounds"][n - 1]["floor"] for r in any_run]) for n in rounds]
            bottom.plot(rounds, floor, "k--", label="rank-8 floor on FLoRA-NA layer's replies")
        n = max(len(v) for v in runs[split].values())
        top.set_title(f"{SPLIT_NAMES[split]} (up to {n} seeds)")
        top.set_ylabel("test accuracy")
        top.grid(alpha=0.3)
        bottom.set_yscale("log")
        bottom.set_xlabel("round")
        bottom.set_ylabel("||T - Bh Ah|| / ||T||")
        bottom.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=72)


def main() -> None:
    runs = load()
    section = ["### Final test accuracy (%, mean ± sample std over seeds)", ""] + accuracy_table(runs)
    section += ["", "### Divergence `||T - Bh Ah|| / ||T||` of the update the clients receive (fedlora's report)", ""]
    section += divergence_table(runs)
    section += ["", "### Cost per round (mean over every round of every run)", ""] + cost_table(runs)
    section += ["", *runs_list(runs)]
    document = HERE.parent / "EXPERIMENTS.md"
    text = document.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    document.write_text(head + begin + "\n" + "\n".join(section) + "\n" + end + tail)
    plot(runs, HERE / "curves.png")
    print("\n".join(section))


if __name__ == "__main__":
    main()
