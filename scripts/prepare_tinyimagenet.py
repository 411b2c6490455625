"""Lay out the standard tiny-imagenet-200 download as the ImageFolder tree `dataset=tinyimagenet` reads.

The download (tiny-imagenet-200.zip, unpacked) has train/<wnid>/images/*.JPEG, val/images/*.JPEG with
their labels in val/val_annotations.txt (file, wnid, bounding box), and an unlabelled test/. This writes

    <out>/train/<wnid>/*.JPEG     (500 per class)
    <out>/test/<wnid>/*.JPEG      (the official val images, 50 per class: the labelled held-out set)

and lossbench carves its validation split from train (dataset.val_fraction). Files are copied (or
symbolic links made with --link); the source is not changed. Re-running over a finished tree is a no-op.

    python scripts/prepare_tinyimagenet.py ~/data/tiny-imagenet-200 ~/data/tiny-imagenet-200-folders
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger("prepare_tinyimagenet")


def val_labels(source: Path) -> dict[str, str]:
    """file name -> wnid from val/val_annotations.txt (tab-separated: file, wnid, x0, y0, x1, y1)."""
    annotations = source / "val" / "val_annotations.txt"
    labels = {}
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{annotations}:{number}: expected 'file<TAB>wnid<TAB>...', got {line!r}")
        labels[fields[0]] = fields[1]
    return labels


def plan(source: Path, out: Path) -> list[tuple[Path, Path]]:
    """(source image, destination) for every training and validation image."""
    pairs = [(image, out / "train" / class_dir.name / image.name)
             for class_dir in sorted(p for p in (source / "train").iterdir() if p.is_dir())
             for image in sorted((class_dir / "images").glob("*.JPEG"))]
    labels = val_labels(source)
    pairs += [(source / "val" / "images" / name, out / "test" / wnid / name) for name, wnid in sorted(labels.items())]
    return pairs


def main(argv: list[str] | None = None) -> int:
    """Check the download, then copy (or link) each image into place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the unpacked tiny-imagenet-200 folder")
    parser.add_argument("out", type=Path, help="where the ImageFolder tree goes (dataset.root)")
    parser.add_argument("--link", action="store_true", help="symbolic links instead of copies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = args.source.expanduser()
    needed = [source / "train", source / "val" / "images", source / "val" / "val_annotations.txt"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        log.error("not a tiny-imagenet-200 folder: missing %s (unpack tiny-imagenet-200.zip there)", ", ".join(missing))
        return 2
    try:
        pairs = plan(source, args.out.expanduser())
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    done = 0
    for src, dst in pairs:
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        partial = dst.with_name(dst.name + ".partial")
        if args.link:
            partial.symlink_to(src.resolve())
        else:
            shutil.copyfile(src, partial)
        partial.replace(dst)  # a killed run leaves no half-written image under its real name
        done += 1
    classes = len({dst.parent.name for _, dst in pairs})
    log.info("%d images in place (%d new), %d classes, under %s", len(pairs), done, classes, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
