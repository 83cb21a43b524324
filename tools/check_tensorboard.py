"""Holds a run's TensorBoard event files to its metrics.jsonl, with TensorBoard's own reader as the oracle.

    python tools/check_tensorboard.py RUN_DIR

EventAccumulator (size_guidance 0: everything) reads RUN_DIR/tensorboard; every scalar must equal the value
metrics.jsonl records at that global step (simple_value is a float32, so the JSON value is rounded to float32
first), steps must run 1, 2, 3, … without a gap or a duplicate across the files a resumed run adds, one map image
per validation must be a PNG of the figure's size (the last one figures/epoch-maps.png), and the
hparams plugin's session_start_info must name every key of config.yaml, with hp_metric declared. Prints
DIFFERENT lines for mismatches and a summary.
"""
import json
import sys
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def f32(x):
    return float(np.float32(x))


def main():
    run = Path(sys.argv[1])
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = {r["global_step"]: r for r in records if r["kind"] == "step"}
    valid = {r["global_step"]: r for r in records if r["kind"] == "valid"}
    want = {tag: {} for tag in ["train_loss", "lr-Adam", "epoch", "samples_per_s", "comm_s", "val_loss"]}
    for g, r in steps.items():
        want["train_loss"][g] = r["loss"]
        want["lr-Adam"][g] = r["lr"]
        want["epoch"][g] = r["epoch"]
        want["samples_per_s"][g] = r["samples"] / r["seconds"]
        want["comm_s"][g] = max(0.0, r["seconds"] - r["compute_seconds"])
    best = float("inf")
    for g, r in sorted(valid.items()):
        want["val_loss"][g] = r["val_loss"]
        best = min(best, r["val_loss"])
        want.setdefault("hp_metric", {})[g] = best
        for lead, v in r["rmse"].items():
            want.setdefault(f"val_rmse_{lead}h", {})[g] = v
    bad = 0
    tags = acc.Tags()["scalars"]
    for tag, expected in want.items():
        if tag not in tags:
            print(f"DIFFERENT {tag}: not in the event files (tags: {sorted(tags)})")
            bad += 1
            continue
        events = acc.Scalars(tag)
        got = [e.step for e in events]
        if got != sorted(set(got)) or set(got) != set(expected):
            print(f"DIFFERENT {tag}: steps {got[:5]}… ({len(got)}), metrics.jsonl has {len(expected)}")
            bad += 1
        for e in events:
            if e.step in expected and not np.isclose(e.value, f32(expected[e.step]), rtol=1e-6, atol=0):
                print(f"DIFFERENT {tag} at step {e.step}: {e.value} vs metrics.jsonl {expected[e.step]}")
                bad += 1
                break
    train = [e.step for e in acc.Scalars("train_loss")] if "train_loss" in tags else []
    if train != list(range(1, len(train) + 1)):
        print(f"DIFFERENT train_loss steps: not 1…{len(train)} without gaps or duplicates")
        bad += 1
    if "live_workers" in tags and {e.value for e in acc.Scalars("live_workers")} - {1.0, 2.0, 3.0, 4.0}:
        print("DIFFERENT live_workers: not a worker count")
        bad += 1
    # The maps: one PNG per validation, of the size the event declares and plot's figure has.
    images = acc.Images("maps/valid") if "maps/valid" in acc.Tags()["images"] else []
    if [e.step for e in images] != sorted(valid):
        print(f"DIFFERENT maps/valid: at steps {[e.step for e in images]}, validations at {sorted(valid)}")
        bad += 1
    figure = (run / "figures" / "epoch-maps.png").read_bytes() if images else b""
    for e in images:
        png = e.encoded_image_string
        size = (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))
        if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR" or size != (e.width, e.height) \
                or size != (int.from_bytes(figure[16:20], "big"), int.from_bytes(figure[20:24], "big")):
            print(f"DIFFERENT maps/valid at step {e.step}: not a PNG of {e.width}×{e.height} (header {png[:24]!r})")
            bad += 1
    if images and images[-1].encoded_image_string != figure:
        print("DIFFERENT maps/valid: the last image is not figures/epoch-maps.png")
        bad += 1
    # eval's scores, when it ran: eval/test.json's values at the evaluated checkpoint's step.
    report = run / "eval" / "test.json"
    if report.exists():
        scores = json.loads(report.read_text())
        for lead in scores["leads"]:
            checks = [(f"test_rmse_{lead['hours']}h", lead.get("model"))]
            skill = (lead.get("skill") or {}).get("model") or {}
            for c in skill.get("categorical", []):
                t = int(c["threshold"]) if c["threshold"] == int(c["threshold"]) else c["threshold"]
                checks.append((f"test_csi_{t}_{lead['hours']}h", c.get("csi")))
            checks.append((f"test_acc_{lead['hours']}h", skill.get("acc")))
            for tag, value in checks:
                if value is None:
                    continue
                # At the evaluated checkpoint's step: best.ckpt's, one of the validations'.
                events = acc.Scalars(tag) if tag in tags else []
                if len(events) != 1 or events[0].step not in valid or events[0].value != f32(value):
                    print(f"DIFFERENT {tag}: {[(e.step, e.value) for e in events]}, eval/test.json {value}")
                    bad += 1
        print(f"eval: {len(scores['leads'])} leads' scores")
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    keys = [line.split(":", 1)[0] for line in (run / "config.yaml").read_text().splitlines()
            if line and not line.startswith("#")]
    missing = set(keys) - set(start.session_start_info.hparams)
    if missing:
        print(f"DIFFERENT hparams: session_start_info lacks {sorted(missing)}")
        bad += 1
    metrics = [m.name.tag for m in experiment.experiment.metric_infos]
    if "hp_metric" not in metrics:
        print(f"DIFFERENT hparams: the experiment declares metrics {metrics}, not hp_metric")
        bad += 1
    files = sorted(p.name for p in (run / "tensorboard").iterdir())
    print(f"{len(tags)} scalar tags, {len(train)} steps, {len(valid)} validations, {len(images)} map images, "
          f"{len(keys)} hparams, {len(files)} event files")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
