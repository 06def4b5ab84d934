"""Write the example's image folder: ``images/<class>/<n>.png``, 40 patches per class (seed 0).

Usage: python examples/own_deployment/make_images.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from patches import cut_patches

HERE = Path(__file__).resolve().parent


def main() -> None:
    for name, patches in cut_patches(per_class=40, seed=0).items():
        folder = HERE / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index, patch in enumerate(patches):
            Image.fromarray(patch).save(folder / f"{index:03d}.png")
    print(f"wrote {HERE / 'images'}")


if __name__ == "__main__":
    main()
