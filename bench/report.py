"""The table on stdout, the JSON record and the latency chart."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.scenarios import Row

COLUMNS = (("#", 2), ("Scenario", 44), ("Measured", 30), ("Baseline (same run)", 34), ("Ratio", 6),
           ("Target", 22), ("Result", 20))


def table(rows: list[Row]) -> str:
    lines = [" | ".join(name.ljust(width) for name, width in COLUMNS)]
    lines.append("-+-".join("-" * width for _, width in COLUMNS))
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        cells = [row.id, row.scenario, row.measured, row.baseline, ratio, row.target, row.status]
        wrapped = [textwrap.wrap(str(c), width) or [""] for c, (_, width) in zip(cells, COLUMNS, strict=True)]
        for i in range(max(len(w) for w in wrapped)):
            lines.append(" | ".join((w[i] if i < len(w) else "").ljust(width)
                                    for w, (_, width) in zip(wrapped, COLUMNS, strict=True)))
        if row.notes:
            lines.append("     ↳ " + row.notes)
    return "\n".join(lines)


def markdown(rows: list[Row]) -> str:
    out = ["| # | Scenario | Measured | Baseline (same run) | Ratio | Target | Result |",
           "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        out.append(f"| {row.id} | {row.scenario} | {row.measured} | {row.baseline} | {ratio} | {row.target} | "
                   f"{row.status} |")
    return "\n".join(out)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any], raw: dict[str, Any]) -> None:
    path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows], "raw": raw}, indent=2,
                               default=str) + "\n")


def chart(path: Path, rows: list[Row], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    keys = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p99.9"), ("max", "max")]
    series = [r for r in rows if r.latency_ms]
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    for row in series:
        assert row.latency_ms is not None
        values = [max(row.latency_ms.get(k, 0.0), 0.01) for k, _ in keys]
        label = f"{row.id} {row.scenario}"
        ax.plot([name for _, name in keys], values, marker="o", label=label[:70])
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_xlabel("percentile (median over rounds; scenario 6: per-user sign-in time)")
    ax.axhline(50, color="grey", linestyle=":", linewidth=1)
    ax.text(0.02, 50, "50 ms (3: profile p99)", fontsize=8, color="grey", va="bottom")
    ax.axhline(100, color="grey", linestyle="--", linewidth=1)
    ax.text(0.02, 100, "100 ms (5: /healthz p99)", fontsize=8, color="grey", va="bottom")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
