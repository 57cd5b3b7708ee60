"""speed's portable targets and their verdicts: a family module's SPEED_TARGETS, each decided on the
95 % interval of the ratio it is on, never on the estimate alone.

A target is (impl, column, "min" | "max", bound), for batch 64 on any CPU (the MLP's: the manual MLP
within 1.3x of the floor of the fastest exact kernel, whatever the machine's is, held on the whole epoch
and on the step alone). The notebook ratios
are information about the machine they ran on (its image decoding, its DataLoader), not targets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from .. import paired, registry, runtiming, stats
from ..config import for_family
from . import floor, speed

FLOOR_RATIO = "mnistbench_over_floor"  # ratios with a bound of their own: an epoch cannot beat its matmuls,
STEP_RATIO = "step_over_floor"  # nor a step
FLOOR_RATIOS = (FLOOR_RATIO, STEP_RATIO)
# more rounds than this many times a run's own are not worth asking for: such an estimate is at the bound
WORTH_ASKING = 20


def targets() -> list[tuple[str, str, str, str, float]]:
    """(family, impl, column, kind, bound) of every registered family's speed targets."""
    return [(family, *target) for family in registry.families()
            for target in floor.family_hook(family, "SPEED_TARGETS") or []]


@dataclass(frozen=True)
class TargetCheck:
    """One speed target as a row decided it: the ratio with its 95 % interval, the bound, and the verdict,
    "met" / "missed" when the whole interval lies on one side of the bound, else "inconclusive" (with why)."""

    what: str  # "mlp/manual mnistbench_over_floor"
    value: float
    ci_low: float
    ci_high: float
    bound: str  # "<= 1.3"
    verdict: str  # "met" | "missed" | "inconclusive"
    note: str = ""


def rounds_to_decide(value: float, ci_low: float, ci_high: float, bound: float, rounds: int) -> int | None:
    """About how many paired rounds would put the interval wholly on one side of the bound if the rounds
    kept their spread (paired.rounds_needed, the bound as a band of width 0; the per-round SD read back
    from the t interval the ratio came with). None when no number would: the estimate sits on the bound;
    near it the number runs into thousands, which decide_target does not ask for (WORTH_ASKING)."""
    if rounds < paired.MIN_PAIRS:
        return None
    t_quantile = sps.t.ppf(1 - stats.ALPHA / 2, rounds - 1)
    sd_log = (math.log(ci_high) - math.log(ci_low)) / 2 * math.sqrt(rounds) / t_quantile
    return paired.rounds_needed(math.log(value / bound), sd_log, threshold=0.0)


def decide_target(value: float, ci_low: float, ci_high: float, kind: str, bound: float,
                  floor_ratio: bool, rounds: int | None = None) -> tuple[str, str]:
    """(verdict, note) of a target on its interval, as the paired comparisons decide (criterion.rs: an estimate
    on the right side of the bound is not enough, its interval must clear it). A ratio to the matmul floor
    under 1 cannot be true (neither an epoch nor a step beats its own matmuls): the floor beside it was
    slowed by something else, and no verdict is taken from it. rounds: how many rounds the interval came
    from, when more of them can be asked for (--repeats), so that the note can say how many would do."""
    if not all(math.isfinite(v) for v in (value, ci_low, ci_high)):
        return "inconclusive", "no interval (fewer than 3 rounds)"
    if floor_ratio and value < 1:
        return "inconclusive", ("under 1, which an epoch or a step cannot be against its own matmuls: the "
                                "floor measured beside it was disturbed (a busy or drifting machine)")
    good, bad = (ci_low >= bound, ci_high < bound) if kind == "min" else (ci_high <= bound, ci_low > bound)
    if good:
        return "met", ""
    if bad:
        return "missed", ""
    straddles = "the interval straddles the bound"
    if not rounds or ci_low <= 0:
        return "inconclusive", f"{straddles}: more rounds or a quieter machine would decide"
    needed = rounds_to_decide(value, ci_low, ci_high, bound, rounds)
    if needed is None:
        return "inconclusive", f"{straddles}, and the estimate sits on it: a quieter machine might decide"
    if needed > WORTH_ASKING * rounds:
        return "inconclusive", (f"{straddles}, and the estimate is within {abs(value / bound - 1):.1%} of "
                                f"it: at this spread only about {needed} rounds ({needed / rounds:.0f}x this "
                                "run's) would decide, so read it as at the bound")
    return "inconclusive", (f"{straddles}: at this spread about --repeats {needed} (this run had {rounds} rounds) "
                            "or a quieter machine would decide")


def check_targets(rows) -> list[TargetCheck]:
    """Every target that the rows cover, decided on its interval (decide_target). A target is set for the
    family's own network: a row with other hidden sizes (speed --hidden) is held to none."""
    by_pair = {(r["family"], r["impl"]): r for r in rows}
    out = []
    for family, impl, column, kind, bound in targets():
        row = by_pair.get((family, impl), {})
        if "hidden" in row and row["hidden"] != speed.hidden_text(for_family(family, impl).hidden):
            continue
        value = row.get(column)
        if value is None:
            continue
        low, high = (row.get(f"{column}{part}", math.nan) for part in ("_ci_low", "_ci_high"))
        # --repeats sets the epoch's rounds and, beyond stepfloor.ROUNDS, the step's blocks
        rounds = row.get("step_rounds") if column == STEP_RATIO else row.get("repeats")
        verdict, note = decide_target(value, low, high, kind, bound, floor_ratio=column in FLOOR_RATIOS,
                                      rounds=rounds if column in FLOOR_RATIOS else None)
        spread = row.get("floor_spread") if column == FLOOR_RATIO else None
        if spread is not None and spread >= runtiming.NOISY_LIMIT:
            noisy = (f"a noisy machine: the floor's own rounds spread {spread:.0%} (IQR / median), and on a busy "
                     "host the ratio to a floor whose operands stay in cache rises")
            note = f"{note}; {noisy}" if note else noisy
        out.append(TargetCheck(f"{family}/{impl} {column}", value, low, high,
                               f"{'>=' if kind == 'min' else '<='} {bound:g}", verdict, note))
    return out
