"""The report of bench.abuse: a text table per attack and a PNG of time, peak RSS and /healthz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RSS_TARGET_MB = 300.0
HEALTHZ_TARGET_MS = 500.0


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'attack':<34} {'pass':<5} {'max s':>7} {'p50 s':>7} {'+RSS MB':>8} {'healthz ms':>10}"
    out = [head + "  statuses | failed targets"]
    for r in rows:
        if "skipped" in r:
            out.append(f"{r['name']:<34} {'skip':<5} ({r['skipped']})")
            continue
        statuses = " ".join(f"{k}x{v}" for k, v in sorted(r["statuses"].items()))
        failed = ",".join(k for k, v in r["targets"].items() if v is False) or "-"
        restarted = "  [restarted]" if "restarted_after" in r else ""
        out.append(
            f"{r['name']:<34} {'PASS' if r['passed'] else 'FAIL':<5} "
            f"{r['request_s']['max'] or 0:>7.2f} {r['request_s']['p50'] or 0:>7.2f} "
            f"{r['rss_mb']['delta']:>8.1f} {r['probes']['/healthz']['worst_ms'] or 0:>10.1f}  "
            f"{statuses} | {failed}{restarted}"
        )
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if "skipped" not in r]
    names = [r["name"] for r in done]
    colors = ["tab:green" if r["passed"] else "tab:red" for r in done]
    panels = [
        ("attack requests: max wall time, s", [r["request_s"]["max"] or 0 for r in done], None),
        ("peak RSS over idle, MB", [r["rss_mb"]["delta"] for r in done], RSS_TARGET_MB),
        ("worst /healthz, ms", [r["probes"]["/healthz"]["worst_ms"] or 0 for r in done],
         HEALTHZ_TARGET_MS),
    ]  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.45 * len(done) + 1.6), sharey=True)
    for ax, (title, values, target) in zip(axes, panels, strict=True):
        ax.bar_label(ax.barh(names, values, color=colors), fmt="%.3g", fontsize=7, padding=2)
        if target is not None:
            ax.axvline(target, color="black", ls="--", lw=1, label=f"target {target:.0f}")
            ax.legend(fontsize=8)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(title, fontsize=10)
    axes[0].invert_yaxis()
    fig.suptitle("Sieve under attack (green: all targets met, red: some missed)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main ------------------------------------------------------------------------------------
