"""A CPU burner: the control beside the baseline (the `loaded` system, bench/README.md).

    python -m bench.burn SHARE NICE

Burns SHARE (0 < SHARE <= 1) of one core until killed, in slices of at most 2 ms spread
over time, at nice NICE (and, under autogroup scheduling, with its session's group at NICE, as
`ivr serve` claims it; start it in a session of its own). Asterisk alone beside it, taking
the CPU the engine and Postgres took in the engine's step, tells whether the engine lost takes
by the CPU it used or by how it uses Asterisk: Asterisk cannot tell a burner from an engine."""

from __future__ import annotations

import sys
import time

from ivr.core.priority import claim

SLICE = 0.002  # seconds of work between sleeps: shorter than a 20 ms media frame


def burn(share: float) -> None:
    """Keep this process's CPU time at `share` of the wall time since the start: a slice is
    burnt whenever it falls behind (a sleep that overslept, a turn lost to other threads), so
    it takes the CPU it stands for, as an engine with work queued would."""
    wall, cpu = time.monotonic, time.process_time
    start_wall, start_cpu = wall(), cpu()
    while True:
        behind = share * (wall() - start_wall) - (cpu() - start_cpu)
        if behind > 0:
            until = cpu() + min(behind, SLICE)
            while cpu() < until:
                pass
        else:
            time.sleep(max(-behind / share, SLICE / 2))


def main(argv: list[str]) -> int:
    share, nice = float(argv[0]), int(argv[1])
    if not 0 < share <= 1:
        print(f"SHARE must be in (0, 1], not {share}", file=sys.stderr)
        return 2
    claim(nice)
    burn(share)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
