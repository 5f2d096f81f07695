"""Packaging files: desktop entry, AppStream metainfo, icons, pyproject entry points and the PyInstaller spec.

Fast and offline. The structure is checked here in Python; the freedesktop validators (`desktop-file-validate`
from desktop-file-utils, `appstreamcli` from appstream) also run when they are installed and are skipped
otherwise.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "packaging"
APP_ID = "io.github.consistency_studio.ConsistencyStudio"
DESKTOP = PKG / f"{APP_ID}.desktop"
METAINFO = PKG / f"{APP_ID}.metainfo.xml"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
SIZES = (16, 32, 48, 64, 128, 256, 512)
MIME_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/tiff": ".tiff",
               "image/bmp": ".bmp", "image/gif": ".gif"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_pkg_{name}", PKG / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)  # strict: duplicate keys are errors
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(DESKTOP.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def _list(value: str) -> list[str]:
    assert value.endswith(";"), f"list value {value!r} must end with ';'"
    return value.rstrip(";").split(";")


# ---------------------------------------------------------------------------------------------------------
# Desktop entry


def test_desktop_entry_fields(pyproject):
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Consistency Studio"
    assert entry["Icon"] == APP_ID
    assert entry.get("Terminal") == "false"
    exe, *args = entry["Exec"].split()
    assert exe == "cstudio" and exe in pyproject["project"]["scripts"]
    assert args == ["%F"], "Exec must pass the files of 'Open with' as %F"
    assert entry["TryExec"] == exe
    assert {"Graphics", "2DGraphics", "RasterGraphics"} <= set(_list(entry["Categories"]))
    mimes = _list(entry["MimeType"])
    assert {"image/png", "image/jpeg", "image/webp", "image/tiff"} <= set(mimes)
    # Every type the app opens is offered in "Open with" (.gif opens: its first frame).
    from engine.batch import IMAGE_SUFFIXES

    assert {MIME_SUFFIX[m] for m in mimes} == {s for s in IMAGE_SUFFIXES if s not in (".jpeg", ".jfif", ".jpe", ".tif")}  # other names of the same types
    assert len(mimes) == len(set(mimes))


def test_desktop_mime_types_are_readable_by_the_app():
    from engine.batch import IMAGE_SUFFIXES

    for mime in _list(_desktop_entry()["MimeType"]):
        assert MIME_SUFFIX.get(mime) in IMAGE_SUFFIXES, f"{mime} is offered in 'Open with' but not a known image type"


def test_desktop_file_validate():
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate not installed (Debian: desktop-file-utils)")
    proc = subprocess.run([tool, str(DESKTOP)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------------
# AppStream metainfo


def test_metainfo_fields(pyproject):
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("metadata_license") in ("CC0-1.0", "FSFAP", "MIT")
    assert root.findtext("project_license") == pyproject["project"]["license"]
    assert root.findtext("name") == _desktop_entry()["Name"]
    assert 10 <= len(root.findtext("summary")) <= 80
    assert len(root.findall("description/p")) >= 1
    launch = root.find("launchable")
    assert launch.get("type") == "desktop-id" and launch.text == DESKTOP.name
    assert root.findtext("provides/binary") == "cstudio"
    assert root.find("content_rating") is not None
    versions = [r.get("version") for r in root.findall("releases/release")]
    assert pyproject["project"]["version"] in versions
    assert {c.text for c in root.findall("categories/category")} == set(_list(_desktop_entry()["Categories"]))
    # AppStream wants absolute URLs for screenshots; the committed file lists none (see the comment in it).
    for img in root.iter("image"):
        assert img.text.startswith("https://"), img.text


def _appstreamcli() -> str:
    tool = shutil.which("appstreamcli")
    if tool is None:
        pytest.skip("appstreamcli not installed (Debian: appstream)")
    return tool


def test_appstreamcli_validate():
    proc = subprocess.run([_appstreamcli(), "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_metainfo_with_screenshots(tmp_path):
    """The release copy with screenshots (once the project has a public URL) lists files that exist and validates."""
    shots = _load("metainfo_screenshots")
    text = shots.with_screenshots("https://example.org/consistency-studio/raw/main")
    root = ET.fromstring(text)
    images = [s.findtext("image") for s in root.findall("screenshots/screenshot")]
    assert len(images) == len(shots.SCREENSHOTS) and root.find("screenshots/screenshot").get("type") == "default"
    for url in images:
        rel = url.split("/raw/main/", 1)[1]
        assert (ROOT / rel).is_file(), rel
    if shutil.which("appstreamcli"):
        out = tmp_path / METAINFO.name
        out.write_text(text, encoding="utf-8")
        proc = subprocess.run(["appstreamcli", "validate", "--no-net", str(out)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------------
# Icons


def test_svg_icon_is_square_svg():
    svg = HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    x0, y0, w, h = map(float, root.get("viewBox").split())
    assert w == h > 0


@pytest.mark.parametrize("size", SIZES)
def test_png_icon_sizes(size):
    icons = _load("make_icons")
    assert icons.SIZES == SIZES
    png = HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
    assert png.is_file(), f"{png} missing: run python packaging/make_icons.py"
    assert icons.png_size(png) == (size, size)
    from PIL import Image

    with Image.open(png) as im:
        im.load()
        assert im.mode == "RGBA" and im.size == (size, size)
        alpha = im.getchannel("A")
        assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((size // 2, size // 2)) == 255  # rounded corners


def test_make_icons_check_passes():
    assert _load("make_icons").main(["--check"]) == 0


def test_icons_ship_as_package_data(pyproject):
    assert "resources*" in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "**/*" in pyproject["tool"]["setuptools"]["package-data"]["resources"]


# ---------------------------------------------------------------------------------------------------------
# pyproject entry points and extras


def test_entry_points(pyproject):
    project = pyproject["project"]
    assert project["scripts"]["cstudio"] == "app.__main__:main"
    assert project["gui-scripts"]["cstudio-gui"] == "app.__main__:main"
    from app.__main__ import main

    assert callable(main)


def test_dependencies_and_extras(pyproject):
    deps = {re.split(r"[ <>=!~\[;]", d, maxsplit=1)[0].lower(): d for d in pyproject["project"]["dependencies"]}
    torch = deps["torch"]
    assert ">=" in torch and "==" not in torch, "torch must stay a range (CPU and CUDA builds)"
    extras = pyproject["project"]["optional-dependencies"]
    assert any(d.startswith("pytest") for d in extras["dev"])
    assert any(d.startswith("pyinstaller") for d in extras["packaging"])
    assert any(d.startswith("diffusers") for d in extras["bench"])


# ---------------------------------------------------------------------------------------------------------
# PyInstaller spec and scripts


def test_scripts_compile():
    for name in ("cstudio.spec", "cstudio_entry.py", "smoke.py", "make_icons.py", "metainfo_screenshots.py"):
        compile((PKG / name).read_text(encoding="utf-8"), name, "exec")


class _Recorder:
    calls: list = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        _Recorder.calls.append(self)


class _Analysis(_Recorder):
    def __init__(self, scripts, **kwargs):
        super().__init__(scripts, **kwargs)
        self.scripts, self.pure = scripts, []
        self.datas = [(f"{dest}/{Path(src).name}", src, "DATA") for src, dest in kwargs["datas"]]
        self.datas += [(d, "/x", "DATA") for d in ("torch/test/foo.txt", "torch/include/a.h",
                                                   "PySide6/Qt/translations/qtbase_de.qm",
                                                   "PySide6/Qt/translations/designer_de.qm")]
        self.binaries = [(d, "/x", "BINARY") for d in ("torch/bin/torch_shm_manager", "torch/bin/test_api",
                                                       "PySide6/Qt/plugins/imageformats/libqpdf.so",
                                                       "PySide6/Qt/plugins/imageformats/libqjpeg.so")]


def _run_spec() -> dict:
    _Recorder.calls = []
    ns = {"SPECPATH": str(PKG), "Analysis": _Analysis, "PYZ": type("PYZ", (_Recorder,), {}),
          "EXE": type("EXE", (_Recorder,), {}), "COLLECT": type("COLLECT", (_Recorder,), {}), "__file__": "cstudio.spec"}
    exec(compile((PKG / "cstudio.spec").read_text(encoding="utf-8"), "cstudio.spec", "exec"), ns)
    return ns


def test_spec_builds_one_folder_bundle_with_resources():
    ns = _run_spec()
    a = ns["a"]
    (script,) = a.scripts
    assert Path(script).is_file()
    assert str(ROOT) in a.kwargs["pathex"]
    for src, dest in a.kwargs["datas"]:
        assert Path(src).is_file() and (dest.split("/")[0] in ("resources", "engine")
                                        or (Path(src).name, dest) == ("pyproject.toml", "."))
    dests = {d for d, _, _ in a.datas}
    assert f"resources/icons/hicolor/256x256/apps/{APP_ID}.png" in dests
    assert "PySide6/Qt/translations/qtbase_de.qm" in dests
    assert not dests & {"torch/test/foo.txt", "torch/include/a.h", "PySide6/Qt/translations/designer_de.qm"}
    bins = {d for d, _, _ in a.binaries}
    assert bins == {"torch/bin/torch_shm_manager", "PySide6/Qt/plugins/imageformats/libqjpeg.so"}
    assert "PySide6.QtNetwork" in a.kwargs["excludes"] and "tkinter" in a.kwargs["excludes"]
    exes = [c for c in _Recorder.calls if type(c).__name__ == "EXE"]
    assert {e.kwargs["name"]: e.kwargs["console"] for e in exes} == {"cstudio": True, "cstudio-gui": False}
    assert all(e.kwargs["exclude_binaries"] for e in exes), "one-folder: binaries go to COLLECT, not into the exe"
    (coll,) = [c for c in _Recorder.calls if type(c).__name__ == "COLLECT"]
    assert coll.kwargs["name"] == "cstudio" and all(e in coll.args for e in exes)


def test_spec_bundles_the_engine_data_files():
    """Files the engine reads next to its modules ship at the same place (the analysis collects only modules).

    `cstudio data build` reads engine/data/allowlist.tsv through Path(__file__); without it in the bundle's
    datas the command fails in the bundle only.
    """
    datas = {(Path(src).resolve(), dest.replace("\\", "/")) for src, dest in _run_spec()["a"].kwargs["datas"]}

    def bundled(p: Path) -> bool:
        return (p.resolve(), p.relative_to(ROOT).parent.as_posix()) in datas

    # What the code reads: Path(__file__).with_name("x") / Path(__file__).parent / "x" in engine/ and app/.
    read = set()
    for py in [*(ROOT / "engine").rglob("*.py"), *(ROOT / "app").rglob("*.py")]:
        for name in re.findall(r'Path\(__file__\)[.\w()]*?(?:\.with_name\(|\s*/\s*)"([^"]+)"', py.read_text("utf-8")):
            read.add(py.parent / name)
    assert ROOT / "engine" / "data" / "allowlist.tsv" in read
    # ... and every other non-Python file in the packages, so a new one cannot be forgotten.
    for pkg in ("engine", "app"):
        read |= {p for p in (ROOT / pkg).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                 and p.suffix not in (".py", ".pyc", ".pyo")}
    missing = sorted(str(p.relative_to(ROOT)) for p in read if p.is_file() and not bundled(p))
    assert missing == [], f"not in the spec's datas: {missing}"


def test_smoke_script_refuses_missing_bundle(tmp_path):
    proc = subprocess.run([sys.executable, str(PKG / "smoke.py"), str(tmp_path / "nothing")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "build first" in proc.stderr


def test_install_desktop_lays_out_hicolor(tmp_path):
    if shutil.which("sh") is None or shutil.which("install") is None:
        pytest.skip("needs a POSIX shell and install(1)")
    prefix = tmp_path / "share"
    exe = tmp_path / "my venv" / "bin" / "cstudio"
    proc = subprocess.run(["sh", str(PKG / "install-desktop.sh"), "--prefix", str(prefix), "--exec", str(exe)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    desktop = prefix / "applications" / DESKTOP.name
    assert f'Exec="{exe}" %F' in desktop.read_text().splitlines()
    assert (prefix / "metainfo" / METAINFO.name).is_file()
    assert (prefix / "icons/hicolor/scalable/apps" / f"{APP_ID}.svg").is_file()
    for n in SIZES:
        assert (prefix / f"icons/hicolor/{n}x{n}/apps/{APP_ID}.png").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    subprocess.run(["sh", str(PKG / "install-desktop.sh"), "--prefix", str(prefix), "--uninstall"], check=True,
                   capture_output=True, timeout=60)
    assert not desktop.exists() and not any(prefix.rglob(f"{APP_ID}*"))


def _desktop_string(value: str) -> str:
    """Undo the escapes of a desktop-entry string value (\\s \\n \\t \\r \\\\); others stay as written."""
    table = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), m.group(0)), value)


def _exec_argv(value: str) -> list[str]:
    """Split an Exec value as a launcher does (Desktop Entry spec): string escapes, then quoting, then %%."""
    s, args, i = _desktop_string(value), [], 0
    while i < len(s):
        if s[i] == " ":
            i += 1
        elif s[i] == '"':
            i, arg = i + 1, ""
            while s[i] != '"':
                if s[i] == "\\":
                    assert s[i + 1] in '"`$\\', f"undefined escape in a quoted argument: {s[i:i + 2]!r}"
                    i += 1
                arg += s[i]
                i += 1
            args.append(arg)
            i += 1
        else:
            j = s.find(" ", i)
            j = len(s) if j < 0 else j
            assert not set(s[i:j]) & set('"\'\\><~|&;$*?#()`'), f"unquoted reserved character in {s[i:j]!r}"
            args.append(s[i:j])
            i = j
    return [a if a.startswith("%") and len(a) == 2 else a.replace("%%", "%") for a in args]


@pytest.mark.parametrize("name", ['say "hi" $HOME', "back\\slash", "a&b|c", "100% sure", "it's `here`"])
def test_install_desktop_quotes_any_exec_path(tmp_path, name):
    """The path comes out of the launcher's parsing unchanged: quoted per the spec, never mangled by sed."""
    if shutil.which("sh") is None or shutil.which("install") is None:
        pytest.skip("needs a POSIX shell and install(1)")
    prefix = tmp_path / "share"
    exe = tmp_path / name / "bin" / "cstudio"
    proc = subprocess.run(["sh", str(PKG / "install-desktop.sh"), "--prefix", str(prefix), "--exec", str(exe)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = (prefix / "applications" / DESKTOP.name).read_text(encoding="utf-8").splitlines()
    (exec_line,) = [line for line in lines if line.startswith("Exec=")]
    (try_line,) = [line for line in lines if line.startswith("TryExec=")]
    assert _exec_argv(exec_line[len("Exec="):]) == [str(exe), "%F"]
    assert _desktop_string(try_line[len("TryExec="):]) == str(exe)


def test_spec_bundles_what_version_reads():
    """In the bundle there is no distribution metadata; `cstudio --version` said "unknown" there."""
    datas = {(Path(src).resolve(), dest.replace("\\", "/")) for src, dest in _run_spec()["a"].kwargs["datas"]}
    assert (ROOT / "pyproject.toml", ".") in datas


def test_version_without_distribution_metadata_reads_the_bundled_pyproject(tmp_path, monkeypatch):
    """The bundle's layout: no metadata, app/ and pyproject.toml side by side in one folder."""
    import app.__main__ as entry

    (tmp_path / "app").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "9.8.7"\n', encoding="utf-8")
    monkeypatch.setattr(entry, "DIST_NAME", "no-such-distribution-installed")
    monkeypatch.setattr(entry, "__file__", str(tmp_path / "app" / "__main__.py"))
    assert entry.version() == "9.8.7"
    (tmp_path / "pyproject.toml").unlink()
    assert entry.version() == "unknown"
