"""Render the application icon (icons/workbench.svg) as PNGs at the usual hicolor sizes, into icons/hicolor/.

    python packaging/linux/render_icons.py        (the PNGs are committed; run again when the SVG changes)
"""

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
HERE = Path(__file__).resolve().parent
SVG = HERE.parents[1] / "icons" / "workbench.svg"


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 (QImage painting needs the application)
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"{SVG}: not a valid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = HERE / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "pretrain-workbench.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(str(out))
    scalable = HERE / "icons" / "hicolor" / "scalable" / "apps" / "pretrain-workbench.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SVG, scalable)
    print(f"rendered {len(SIZES)} sizes into {HERE / 'icons' / 'hicolor'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
