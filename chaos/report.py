"""A check's counts and failures, and the table that prints them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

EXAMPLES = 5  # failures named per count


@dataclass
class Check:
    title: str
    rows: list[tuple[str, int | str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, label: str, value: int | str) -> None:
        """A count worth seeing, that passes whatever it is."""
        self.rows.append((label, value))

    def none(self, label: str, found: Sequence[str]) -> None:
        """A count that must be zero; the first few of what was found are named in the failures."""
        self.rows.append((label, len(found)))
        if found:
            shown = "; ".join(found[:EXAMPLES]) + (
                f"; ... {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else ""
            )
            self.failures.append(f"{label}: {shown}")


def table(checks: Sequence[Check]) -> str:
    width = max(len(label) for check in checks for label, _ in check.rows) + 4
    width = max(width, *(len(check.title) + 3 for check in checks))
    lines = [f"{'check':<{width}} {'count':>8}", "-" * (width + 9)]
    for number, check in enumerate(checks, 1):
        lines.append(f"{f'{number}. {check.title}':<{width}} {'PASS' if check.ok else 'FAIL':>8}")
        lines += [f"{'   ' + label:<{width}} {value!s:>8}" for label, value in check.rows]
    failures = [f"  {number}. {failure}" for number, c in enumerate(checks, 1) for failure in c.failures]
    passed = sum(check.ok for check in checks)
    lines += ["-" * (width + 9), f"{passed}/{len(checks)} checks passed", *failures]
    return "\n".join(lines)
