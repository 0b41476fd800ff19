"""Data-set layouts: build a small FaceForensics++-layout set, list it, add your own
source, and see how preprocess groups the videos into pairs and single clips.

    python examples/datasets.py [--preprocess]

``--preprocess`` also runs the preprocessing (MTCNN on the CPU, about 10 s) and
prints what the shards hold.
"""
import argparse
import collections
import glob
import os
import tempfile

import dfaug
from dfdf_train import sources, synth
from dfdf_train.preprocess import plan, preprocess


def read_mine(root):
    """A source of one's own: root/real/X.mp4 is REAL, root/fake/X.mp4 is its FAKE."""
    out = []
    for label in ("real", "fake"):
        for f in sorted(os.listdir(os.path.join(root, label))):
            original = f"real/{f}" if label == "fake" else None
            out.append(sources.video_at(root, f"{label}/{f}", label.upper(), original,
                                        source="mine"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preprocess", action="store_true", help="also preprocess the FF++ set")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()

    # 1. a FaceForensics++-layout set (synthetic fakes of a real face video)
    made = synth.make_layout(tmp, "ffpp", frames=60)
    print("1. layout detected:", sources.detect_layout(made.input))
    for v in sources.list_videos([made.input]):
        print(f"   {v.label} {v.filename}  split={v.split}  method={v.meta.get('method')}")

    # 2. how preprocess groups them: a real with its aligned fakes, or a video alone
    print("2. groups:")
    for g in plan([made.input]):
        what = "alone: " + g.note if g.alone else f"{len(g.fakes)} aligned fake(s)"
        print(f"   {g.key.split('/', 1)[1]}: {what}")

    # 3. a source of one's own, registered beside the built-in ones
    mine = os.path.join(tmp, "mine")
    reals = list(made.pairs.values())
    for i, (fake, real) in enumerate(made.pairs.items()):
        for label, path in (("real", real), ("fake", fake)):
            os.makedirs(os.path.join(mine, label), exist_ok=True)
            os.link(path, os.path.join(mine, label, f"v{i}.mp4"))
    sources.LAYOUTS["mine"] = read_mine
    groups = plan([mine], layout="mine")
    print(f"3. own source: {len(groups)} groups of {len(reals)} reals, each with "
          f"{sorted({len(g.fakes) for g in groups})} fake(s)")

    if args.preprocess:
        out = os.path.join(tmp, "shards")
        s = preprocess([made.input], out, progress=False)
        kinds = collections.Counter()
        for shard in glob.glob(os.path.join(out, "*.tar")):
            for rec in dfaug.read_shard(shard):
                kinds["pair" if len(rec.members) == 2 else f"single {rec.members[0]}"] += 1
        print(f"4. preprocess: {s.pairs} samples ({s.single_clips} single clips): "
              f"{dict(sorted(kinds.items()))}; {s.skipped} skipped (see {out}/skipped.jsonl)")


if __name__ == "__main__":
    main()
