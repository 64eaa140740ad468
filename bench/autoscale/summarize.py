#!/usr/bin/env python3
"""Summarises a bench/autoscale/run.sh folder as Markdown: per scenario, the medians over seeds of
every policy and baseline, whether each meets the goal (>= the SLO target within the SLO, fewer
replica-seconds than the cheapest static fleet, within 1.3x the oracle), and the peak RSS and wall
time of the runs; with PARETO runs, each policy's points over its main knob and the Pareto front.
Usage: summarize.py OUT_DIR SLO_TARGET"""
import json
import pathlib
import re
import statistics
import sys

ORDER = ["hpa-cpu", "hpa-queue", "kpa", "keda", "galley-concurrency", "galley", "oracle", "static-min",
         "static-peak"]
GOAL_RATIO = 1.3


def base_name(policy):
    return re.sub(r" \(.*\)$", "", policy)


def detail(policy):
    m = re.search(r"\((.*)\)$", policy)
    return m.group(1) if m else ""


def rss_wall(time_file):
    text = time_file.read_text() if time_file.exists() else ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    seconds = None
    if wall:
        parts = [float(p) for p in wall.group(1).split(":")]
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return (int(rss.group(1)) / 1024 if rss else None), seconds


def fmt_int(x):
    return f"{x:,.0f}"


def load(out):
    runs = {}
    for path in sorted(out.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):
            print(f"<!-- {path.name}: no JSON (the run failed) -->")
            continue
        rss, wall = rss_wall(path.with_suffix(".time"))
        runs[path.stem] = (doc, rss, wall)
    return runs


def main_tables(runs, target):
    scenarios = {}
    for name, (doc, rss, wall) in runs.items():
        m = re.match(r"main-(\w+)-(\d+)$", name)
        if m:
            scenarios.setdefault(m.group(1), []).append((int(m.group(2)), doc, rss, wall))
    for sc in ["trace", "step", "diurnal", "bursts", "climb", "flash", "quiet"]:
        if sc not in scenarios:
            continue
        seeds = sorted(scenarios[sc], key=lambda r: r[0])
        first = seeds[0][1]
        print(f"### {sc}: {first['description']}")
        print()
        print(f"Seeds {', '.join(str(s[0]) for s in seeds)}; medians over the seeds; goal = "
              f">= {100 * target:.1f}% within the SLO, fewer replica-seconds than static-min, "
              f"<= {GOAL_RATIO}x the oracle (seeds meeting it).")
        print()
        step = sc == "step"
        print("| policy | within SLO | dropped | p99 | replica-seconds | / oracle | scale events |"
              + (" SLO restored after |" if step else "") + " goal | baselines' settings |")
        print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if step else "") + "---|---|")
        rows = {}
        for _, doc, _, _ in seeds:
            res = {base_name(r["policy"]): r for r in doc["results"]}
            for pol, r in res.items():
                rows.setdefault(pol, []).append((r, res))
        for pol in [p for p in ORDER if p in rows] + [p for p in rows if p not in ORDER]:
            per_seed = rows[pol]
            med = lambda key: statistics.median(r[key] for r, _ in per_seed)
            ratios = [r["replicaSecondsOverOracle"] for r, _ in per_seed
                      if r.get("replicaSecondsOverOracle") is not None]
            met = 0
            for r, res in per_seed:
                smin = res.get("static-min")
                ok = (r["withinSloShare"] >= target
                      and smin is not None and r["replicaSeconds"] < smin["replicaSeconds"]
                      and r.get("replicaSecondsOverOracle") is not None
                      and r["replicaSecondsOverOracle"] <= GOAL_RATIO)
                met += ok
            goal = "-" if pol in ("oracle", "static-min", "static-peak") else f"{met}/{len(per_seed)}"
            restore = ""
            if step:
                vals = [r.get("restoreSeconds") for r, _ in per_seed]
                restore = " " + ("never" if any(v is None for v in vals)
                                 else f"{statistics.median(vals):.0f} s") + " |"
            settings = ", ".join(detail(r["policy"]) for r, _ in per_seed if detail(r["policy"]))
            print(f"| {pol} | {100 * med('withinSloShare'):.3f}% | {fmt_int(med('dropped'))} | "
                  f"{1e3 * med('p99Seconds'):.2f} ms | {fmt_int(med('replicaSeconds'))} | "
                  + (f"{statistics.median(ratios):.2f}" if ratios else "-")
                  + f" | {med('scaleEvents'):.0f} |{restore} {goal} | {settings} |")
        rss = [s[2] for s in seeds if s[2] is not None]
        wall = [s[3] for s in seeds if s[3] is not None]
        arrived = statistics.median(doc["results"][0]["arrived"] for _, doc, _, _ in seeds)
        bound = statistics.median(doc["workBoundReplicaSeconds"] for _, doc, _, _ in seeds)
        print()
        print(f"Requests per seed (median): {fmt_int(arrived)}; proven work bound "
              f"{fmt_int(bound)} replica-seconds. One process per seed runs all of it "
              f"(policies and the baselines' searches): peak RSS {max(rss):.1f} MiB (max over "
              f"seeds), wall {statistics.median(wall):.0f} s (median; /usr/bin/time -v).")
        print()


def pareto(runs):
    points = {}
    for name, (doc, rss, wall) in runs.items():
        m = re.match(r"pareto-(\w+)-([\w-]+?)-([\d.]+)$", name)
        if m:
            r = doc["results"][0]
            points.setdefault(m.group(1), []).append(
                (m.group(2), float(m.group(3)), r["withinSloShare"], r["replicaSeconds"], rss))
    if not points:
        return
    print("### Pareto fronts (seed 1): share within the SLO vs replica-seconds over each policy's "
          "main knob")
    print()
    print("Knobs (`--policy-target`): hpa-cpu utilization %, hpa-queue queue per pod, kpa and "
          "galley-concurrency target concurrency, galley target utilization of a replica's "
          "full-batch throughput, keda backlog per replica. Baselines from the seed-1 run of "
          "the same scenario. **Bold**: on the front over all points (no other point has at least "
          "the share for at most the replica-seconds).")
    print()
    for sc, pts in points.items():
        main = runs.get(f"main-{sc}-1")
        allpts = [(p, f"{k:g}", s, c) for p, k, s, c, _ in pts]
        if main:
            for r in main[0]["results"]:
                if r["baseline"]:
                    allpts.append((base_name(r["policy"]), detail(r["policy"]),
                                   r["withinSloShare"], r["replicaSeconds"]))
        front = set()
        for i, (_, _, s, c) in enumerate(allpts):
            if not any((s2 >= s and c2 <= c) and (s2 > s or c2 < c)
                       for j, (_, _, s2, c2) in enumerate(allpts) if j != i):
                front.add(i)
        print(f"**{sc}**: " + "; ".join(
            ("**" if i in front else "") + f"{p} {k}: {100 * s:.2f}% / {fmt_int(c)}"
            + ("**" if i in front else "")
            for i, (p, k, s, c) in sorted(enumerate(allpts), key=lambda e: (e[1][0], e[1][3]))))
        rss = [r for *_, r in pts if r is not None]
        print(f" (peak RSS of these runs: max {max(rss):.1f} MiB)")
        print()


def main():
    out = pathlib.Path(sys.argv[1])
    target = float(sys.argv[2])
    runs = load(out)
    main_tables(runs, target)
    pareto(runs)


if __name__ == "__main__":
    main()
