"""Benchmarks for the GPU modules' pure logic (figures, not a test).

1. Parse of an 8-GPU MIG-enabled ``nvidia-smi -q -x`` (parse_xml + build_facts with -L names), on the
   synthetic fixture and, when ../shared is present, on the real 8-GPU H100 capture.  Target < 20 ms.
2. Validation of every multiset of profiles for every MIG-capable catalog model, cold (caches cleared
   first).  Target < 2 s.
   a. ``mig.fits`` (the yes/no answer, all rules) over every multiset with each profile's count from 0
      to its max count (the full box: 3,840 multisets per 7-slice model, 108,000 for RTX PRO 6000);
   b. ``mig.plan_layout`` end to end (placement, mig-parted doc, resources, and for rejected layouts the
      error message with nearest-layout suggestions) over every multiset whose compute slices fit the
      GPU (sum of G x count <= 7, or 4), i.e. every layout that could be asked for with a chance to fit.

Times are CPU time of this process (time.process_time), so a busy machine does not inflate them.

Run: .venv/bin/python bench/bench_gpu_modules.py
"""
import glob
import itertools
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))
sys.path.insert(0, os.path.join(REPO, "tests"))
import conftest  # noqa: E402,F401  (creates the ansible_collections link)

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, mig, nvidia_smi  # noqa: E402

FIX = os.path.join(REPO, "tests", "unit", "fixtures", "nvidia_smi")
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))


def timed(fn, repeat):
    runs = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        runs.append((time.process_time() - t0) * 1000.0)
    return min(runs), statistics.median(runs), max(runs)


def bench_parse():
    cases = [("synthetic 8x H100 MIG all-balanced (v13)",
              os.path.join(FIX, "qx", "h100-sxm5-80gb_8gpu_mig-all-balanced_550.54.15_v13.xml"),
              os.path.join(FIX, "list", "h100-sxm5-80gb_8gpu_mig-all-balanced.txt"))]
    cases += [("real " + os.path.basename(p), p, None) for p in sorted(glob.glob(os.path.join(SHARED, "fixtures", "nvidia-smi", "qx", "*8gpu*")))]
    print("1. parse nvidia-smi -q -x + build facts (target < 20 ms)")
    for label, xml_path, list_path in cases:
        xml = open(xml_path).read()
        listing_text = open(list_path).read() if list_path else None

        def once(xml=xml, listing_text=listing_text):
            parsed = nvidia_smi.parse_xml(xml)
            listing = nvidia_smi.parse_list(listing_text) if listing_text else None
            return nvidia_smi.build_facts(parsed, "nvidia-smi -q -x", listing)

        facts = once()
        lo, med, hi = timed(once, 50)
        print("   %-75s %4d KiB, %d GPUs, %2d MIG devices: min %.2f ms, median %.2f ms, max %.2f ms"
              % (label, len(xml) // 1024, facts["count"], sum(len(g["mig_devices"]) for g in facts["gpus"]), lo, med, hi))


def multisets(model, budget=False):
    ranges = [range(p.max_count + 1) for p in model.profiles]
    for combo in itertools.product(*ranges):
        if budget and sum(p.compute_slices * c for p, c in zip(model.profiles, combo)) > model.compute_slice_count:
            continue
        yield dict((p.name, c) for p, c in zip(model.profiles, combo) if c)


def clear_caches():
    mig._enumerate_geometry.cache_clear()
    mig._CANDIDATES.clear()


def bench_catalog():
    models = [gpu_catalog.lookup(k) for k in gpu_catalog.mig_capable_keys()]
    total = sum(1 for m in models for _ in multisets(m))
    print("2. validate every multiset of profiles for every MIG-capable model (%d models; target < 2 s)" % len(models))
    clear_caches()
    t0 = time.process_time()
    accepted = 0
    for m in models:
        for counts in multisets(m):
            accepted += mig.fits(m, counts, "580.105.08")
    dt = time.process_time() - t0
    print("   a. fits() over every count box:            %.3f s cold for %d multisets (%d fit; %.1f us each)"
          % (dt, total, accepted, dt / total * 1e6))
    budget_total = sum(1 for m in models for _ in multisets(m, budget=True))
    clear_caches()
    t0 = time.process_time()
    ok = bad = 0
    for m in models:
        for counts in multisets(m, budget=True):
            try:
                mig.plan_layout(m, counts or "all-enabled", driver_version="580.105.08")
                ok += 1
            except mig.MigLayoutError:
                bad += 1
    dt = time.process_time() - t0
    assert ok == accepted, (ok, accepted)
    print("   b. plan_layout() within the compute budget: %.3f s cold for %d multisets (%d plans, %d errors with "
          "suggestions; %.1f us each)" % (dt, budget_total, ok, bad, dt / budget_total * 1e6))
    per_model = {}
    for m in models:
        per_model.setdefault(m.profiles, []).append(m.key)
    print("   (%d distinct profile tables among %d models; caches are shared between models with the same table)"
          % (len(per_model), len(models)))


if __name__ == "__main__":
    print("Python %s on %s, %d CPU(s)" % (sys.version.split()[0], sys.platform, os.cpu_count() or 0))
    bench_parse()
    bench_catalog()
