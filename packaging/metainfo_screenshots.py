#!/usr/bin/env python3
"""Write a release copy of the AppStream metainfo with <screenshots> pointing at docs/screenshots/ under a base URL.

AppStream accepts only absolute http(s) screenshot URLs, and the project has no public address yet, so the
committed metainfo lists none. Once it has one:

    python packaging/metainfo_screenshots.py https://HOST/OWNER/REPO/raw/main -o build/metainfo.xml
    appstreamcli validate build/metainfo.xml        # without --no-net this also fetches the images

The order below is the order software centres show; the first is the default.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METAINFO = ROOT / "packaging" / "io.github.consistency_studio.ConsistencyStudio.metainfo.xml"
SCREENSHOTS = (  # file in docs/screenshots/, caption
    ("inpaint.png", "Inpainting: paint over what should go, press Run"),
    ("colorize.png", "Colorizing a grey photo"),
    ("upscale.png", "Upscaling by four"),
    ("generate.png", "Generating new images"),
)


def with_screenshots(base_url: str, metainfo: Path = METAINFO) -> str:
    if not base_url.startswith(("https://", "http://")):
        raise SystemExit(f"base URL must start with https://, got {base_url!r}")
    tree = ET.parse(metainfo)
    comp = tree.getroot()
    for old in comp.findall("screenshots"):
        comp.remove(old)
    shots = ET.Element("screenshots")
    for i, (name, caption) in enumerate(SCREENSHOTS):
        if not (ROOT / "docs" / "screenshots" / name).is_file():
            raise SystemExit(f"docs/screenshots/{name} is missing")
        shot = ET.SubElement(shots, "screenshot", {"type": "default"} if i == 0 else {})
        ET.SubElement(shot, "caption").text = caption
        ET.SubElement(shot, "image").text = f"{base_url.rstrip('/')}/docs/screenshots/{name}"
    # Software centres read <screenshots> after <description>/<launchable>; put it before <releases>.
    children = list(comp)
    at = next((i for i, c in enumerate(children) if c.tag == "releases"), len(children))
    comp.insert(at, shots)
    ET.indent(tree, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(comp, encoding="unicode") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_url", help="where the repository's files are served, e.g. https://HOST/OWNER/REPO/raw/main")
    ap.add_argument("-o", "--out", help="output file (default: standard output)")
    args = ap.parse_args(argv)
    text = with_screenshots(args.base_url)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
