"""P5: fleet-size facts input: memory and time of `plan --facts` up to the limit, and above it.

Facts files of minimal hosts (``{"host": "hN", "facts": {}}``: the densest
file, the most hosts per byte, and every fact unknown, so every rule says
why) are planned with ``memcg-fix plan --facts FILE --format json``, each
in a fresh process under ``/usr/bin/time -v`` (wall, CPU, peak RSS), sizes up
to remediate.facts.MAX_FACTS_HOSTS; then a file of 1,000,000 hosts, which
must be refused (exit 3) before it is parsed. Figures are the minimum over
``--runs`` runs (load from other work only adds time).

    python bench/bench_fleet.py                        # 10k, 30k, 100k, then 1M refused
    python bench/bench_fleet.py --sizes 10000 --runs 1 --out p5.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, load_note, machine, write_json
from remediate.facts import MAX_FACTS_BYTES, MAX_FACTS_HOSTS

TIME = "/usr/bin/time"


def minimal_facts(path: Path, hosts: int) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write('{"schema_version": 1, "hosts": [')
        handle.write(",".join(f'{{"host": "h{i}", "facts": {{}}}}' for i in range(hosts)))
        handle.write("]}")


def measure(facts: Path) -> dict[str, float]:
    run = subprocess.run(
        [TIME, "-v", sys.executable, "-m", "remediate", "plan", "--facts", str(facts),
         "--format", "json"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, check=False)
    fields = dict(line.strip().rpartition(": ")[::2] for line in run.stderr.splitlines()
                  if ": " in line)
    wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    return {
        "exit": float(run.returncode),
        "wall": sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall))),
        "cpu": float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]),
        "rss_mb": float(fields["Maximum resident set size (kbytes)"]) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=f"10000,30000,{MAX_FACTS_HOSTS}")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--refused", type=int, default=1_000_000)
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    print(f"# limits: {MAX_FACTS_HOSTS:,} hosts, {MAX_FACTS_BYTES >> 20} MiB; {load_note()}")
    print(f"{'hosts':>9} {'file MB':>8} {'exit':>4} {'wall s':>7} {'CPU s':>7} {'ms/host':>7} "
          f"{'RSS MB':>7} {'KB/host':>7}")
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-fleet-") as tmp:
        for hosts in [int(s) for s in args.sizes.split(",")] + [args.refused]:
            facts = Path(tmp) / f"{hosts}.json"
            minimal_facts(facts, hosts)
            runs = [measure(facts) for _ in range(args.runs)]
            best = {key: min(r[key] for r in runs) for key in ("wall", "cpu", "rss_mb")}
            row = {"hosts": hosts, "file_mb": facts.stat().st_size / 1e6,
                   "exit": runs[0]["exit"], **best, "runs": runs}
            rows.append(row)
            print(f"{hosts:9,} {row['file_mb']:8.1f} {row['exit']:4.0f} {best['wall']:7.2f} "
                  f"{best['cpu']:7.2f} {1000 * best['cpu'] / hosts:7.3f} {best['rss_mb']:7.0f} "
                  f"{1024 * best['rss_mb'] / hosts:7.2f}", flush=True)
            facts.unlink()
    print(f"# {load_note()}")
    if args.out:
        write_json(args.out, {"machine": machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
