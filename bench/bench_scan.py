"""S1: every host-side scanner on adversarial text, in seconds per MiB, next to grep -c.

For each scanner and each adversarial shape of tests/hostile_text.py (one long
line of a repeated token, a prefix repeated without its ending, many unique
keys...), a text of ``--size`` MiB (default 16, the most a host file is read)
is made once, written to a temporary file, then, ``--runs`` times each,
interleaved:

* the scanner, in this process, on the text (as the collector calls it),
  timed with ``time.process_time`` (CPU of this process);
* ``grep -c NEEDLE FILE`` on the same bytes, timed as the CPU (user + system)
  of the child from ``getrusage(RUSAGE_CHILDREN)``.

Figures are the minimum over the runs: other work on a busy machine can only
add time, so the minimum is the best estimate of the cost itself. Expansion
bombs stop at the budget (boot.MAX_EXPANSION), which is part of the figure.

    python bench/bench_scan.py                 # 16 MiB, 5 runs (~10 min on 2 loaded cores)
    python bench/bench_scan.py --size 1 --runs 3 --out s1.json
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load_note, machine, write_json
from tests.hostile_text import SCANNERS

MIB = 1 << 20


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def grep_seconds(needle: str, path: Path) -> float:
    before = child_cpu()
    # into a pipe: GNU grep stops at the first match when its output is /dev/null
    subprocess.run(["grep", "-c", "-F", "--", needle, str(path)], stdout=subprocess.PIPE,
                   check=False)
    return child_cpu() - before


def scan_seconds(scan, text: str) -> float:  # type: ignore[no-untyped-def]
    gc.collect()
    started = time.process_time()
    scan(text)
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=16, help="MiB of text per shape")
    parser.add_argument("--runs", type=int, default=5, help="runs of each arm; minimum kept")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    size = int(args.size * MIB)
    rows = []
    print(f"# {args.size:g} MiB per shape, min of {args.runs} runs; {load_note()}")
    print(f"{'scanner':24} {'shape':30} {'MiB':>6} {'s/MiB':>8} {'grep s/MiB':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-scan-") as tmp:
        path = Path(tmp) / "text"
        for scanner in SCANNERS:
            for shape in scanner.shapes:
                text = shape.make(size)
                data = text.encode("utf-8")
                path.write_bytes(data)
                mib = len(data) / MIB
                scans, greps = [], []
                for _ in range(args.runs):
                    scans.append(scan_seconds(scanner.scan, text))
                    greps.append(grep_seconds(shape.needle, path))
                scan_per_mib, grep_per_mib = min(scans) / mib, max(min(greps), 1e-4) / mib
                rows.append({"scanner": scanner.name, "shape": shape.name, "mib": round(mib, 2),
                             "seconds_per_mib": scan_per_mib, "grep_seconds_per_mib": grep_per_mib,
                             "scan_runs": scans, "grep_runs": greps, "needle": shape.needle})
                print(f"{scanner.name:24} {shape.name:30} {mib:6.1f} {scan_per_mib:8.4f} "
                      f"{grep_per_mib:10.4f} {scan_per_mib / grep_per_mib:6.0f}x", flush=True)
                del text, data
    worst = max(rows, key=lambda r: r["seconds_per_mib"])
    print(f"# slowest: {worst['scanner']} / {worst['shape']}: {worst['seconds_per_mib']:.3f} s/MiB"
          f" ({worst['seconds_per_mib'] * 16:.1f} s for a 16 MiB file); {load_note()}")
    if args.out:
        write_json(args.out, {"machine": machine(), "size_mib": args.size, "runs": args.runs,
                              "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
