"""Triage throughput against ffmpeg, in one run on this machine.

Generated videos (default 20 x 2 min, 640x360, 30 fps, H.264 from ffmpeg's testsrc2 with film grain,
cached in ``$SIMREAL_CACHE`` or ``~/.cache/simreal/bench/triage``) go through

- the baseline: Debian's ``ffmpeg -i V -vf fps=1 F/%05d.jpg`` extracting the same 1 fps frames alone,
  once one video after another with ffmpeg's own threading, once two ffmpeg processes at a time
  (one thread each); the faster is the baseline;
- the full pipeline (``simreal.triage.run``: selection with content hashes, Frames at 1 fps,
  JPEG frames, a small CNN classifier trained here scoring every frame, results, CSV, ranking) with 2
  and with 1 decoding worker, each in a fresh folder;
- the same triage command again once finished (nothing to do), as a CLI process.

Targets: pipeline <= 1.5x the ffmpeg baseline; 2 workers >= 1.6x the frames/s of 1 worker; the
rerun < 5 % of the first run. Usage: python benchmarks/triage_throughput.py [--videos 20] [--seconds 120]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (ffmpeg, workers, scorers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def cache_dir() -> Path:
    root = Path(os.environ.get("SIMREAL_CACHE", Path.home() / ".cache" / "simreal"))
    return root / "bench" / "triage"


def make_videos(n: int, seconds: int) -> list[Path]:
    """ffmpeg testsrc2 (moving pattern, counters) with light temporal film grain, x264 veryfast, crf 26
    (about the bitrate of a 360p web video)."""
    d = cache_dir() / f"{n}x{seconds}s_640x360_30"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = d / f"video_{i:03d}.mp4"
        if not p.is_file():
            tmp = p.with_suffix(".tmp.mp4")
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size=640x360:rate=30:duration={seconds}", "-vf",
                            f"hue=h={i * 17 % 360},noise=alls=5:allf=t", "-c:v", "libx264", "-preset", "veryfast",
                            "-crf", "26", "-pix_fmt", "yuv420p", str(tmp)], check=True)
            tmp.rename(p)
        out.append(p)
    return out


def train_small_classifier(root: Path) -> Path:
    """A small CNN (64x64 input) trained for a few steps on drawn images: the model of the benchmark."""
    from simreal.adapt.api import train

    rng = np.random.default_rng(0)
    for cls in ("background", "object"):
        (root / "data" / cls).mkdir(parents=True, exist_ok=True)
        for i in range(16):
            img = rng.uniform(0, 1, (64, 64, 3)) * 0.5
            if cls == "object":
                x, y = rng.integers(0, 40, 2)
                img[y:y + 24, x:x + 24] = (0.9, 0.1, 0.1)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / "data" / cls / f"{i}.png")
    cfg = root / "clf.yaml"
    cfg.write_text(yaml.safe_dump({"task": "classify", "seed": 0, "data": {"image_size": [64, 64], "domains": [
        {"path": str(root / "data"), "name": "drawn"}]}, "model": {"arch": "smallcnn", "width": 16},
        "optim": {"steps": 30, "batch_per_domain": 16}, "selection": {"policy": "last", "eval_every": 30},
        "checkpoint_every": 30}))
    train(cfg, root / "run", progress=False)
    return root / "run"


def ffmpeg_extract(videos: list[Path], root: Path, parallel: int) -> tuple[float, float]:
    def one(v: Path) -> None:
        out = root / v.stem
        out.mkdir(parents=True)
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
        if parallel > 1:
            cmd += ["-threads", "1"]
        cmd += ["-i", str(v), "-vf", "fps=1", "-q:v", "3"]
        if parallel > 1:
            cmd += ["-threads", "1"]
        subprocess.run(cmd + [str(out / "%05d.jpg")], check=True)

    t0, c0 = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, videos))
    return time.perf_counter() - t0, cpu_seconds() - c0


def triage_config(videos: list[Path], run: Path, folder: Path, workers: int) -> dict:
    return {"folder": str(folder), "select": {"name": "Local", "config": {"paths": [str(v) for v in videos]}},
            "analyse": [{"name": "Frames", "config": {"fps": 1}},
                        {"name": "Score", "config": {"models": [{"run": str(run), "name": "clf"}]}},
                        {"name": "Rank"}], "workers": workers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=120)
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg not found: apt-get install -y ffmpeg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from simreal.triage import run

    print(f"cpus {os.cpu_count()}, load at start {load()}", flush=True)
    videos = make_videos(args.videos, args.seconds)
    frames = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clf = train_small_classifier(root / "model")
        rows = []
        t_seq, c_seq = ffmpeg_extract(videos, root / "ff_seq", 1)
        frames = sum(1 for _ in (root / "ff_seq").rglob("*.jpg"))
        rows.append(("ffmpeg -vf fps=1, one video at a time (ffmpeg threads)", t_seq, c_seq, frames))
        t_par, c_par = ffmpeg_extract(videos, root / "ff_par", 2)
        rows.append(("ffmpeg -vf fps=1, 2 processes x 1 thread", t_par, c_par, frames))
        base = min(t_seq, t_par)
        res = {}
        for w in (2, 1):
            folder = root / f"triage_w{w}"
            t0, c0 = time.perf_counter(), cpu_seconds()
            r = run(triage_config(videos, clf, folder, w), progress=False)
            res[w] = (time.perf_counter() - t0, r.frames_scored)
            rows.append((f"simreal triage, {w} worker(s): frames + JPEG + classifier + results", res[w][0],
                         cpu_seconds() - c0, r.frames_scored))
        cfg = root / "again.yaml"
        cfg.write_text(yaml.safe_dump(triage_config(videos, clf, root / "triage_w2", 2)))
        t0, c0 = time.perf_counter(), cpu_seconds()
        subprocess.run([sys.executable, "-m", "simreal.cli.main", "triage", "run", str(cfg), "-q"], check=True,
                       stdout=subprocess.DEVNULL)
        t_rerun = time.perf_counter() - t0
        rows.append(("same triage command again (nothing to do), CLI process", t_rerun, cpu_seconds() - c0, 0))
    print(f"\n{args.videos} videos x {args.seconds} s, 640x360, 30 fps, H.264; load at end {load()}\n")
    print("| run | wall s | CPU s | frames | frames/s |")
    print("|---|---|---|---|---|")
    for name, t, c, n in rows:
        print(f"| {name} | {t:.1f} | {c:.1f} | {n} | {n / t:.1f} |" if n else f"| {name} | {t:.2f} | {c:.2f} | - | - |")
    (t2, n2), (t1, n1) = res[2], res[1]
    print(f"\npipeline (2 workers) / ffmpeg baseline: {t2 / base:.2f}x (target <= 1.5)")
    print(f"2 workers vs 1: {(n2 / t2) / (n1 / t1):.2f}x frames/s (target >= 1.6)")
    print(f"rerun / first run: {100 * t_rerun / t2:.1f} % (target < 5 %)")


if __name__ == "__main__":
    main()
