"""Fonts for the text in pictures: found at run time, chosen per text by which glyphs they have.

Class names can be in any script, so one bundled font is not enough. The font files
are those fontconfig lists (``fc-list``) and those in the usual font folders of Linux,
macOS and Windows, or only those under ``$FASEG_FONT_DIRS`` (folders or files,
separated by ``os.pathsep``) when it is set. Wide-coverage sans faces come first;
Pillow's built-in Latin font comes last. A text gets the first font that has all of its
glyphs; when none has, the one with most, and one warning per script says which font
to install, so no name turns into boxes without a word.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger("faseg")

FONT_DIRS_ENV = "FASEG_FONT_DIRS"
FONT_SUFFIXES = {".ttf", ".otf", ".ttc", ".otc"}
BUILTIN = "<pillow>"
"""Stands for Pillow's built-in font (Latin only) in font lists."""

PREFERRED = (
    "notosans-regular",
    "dejavusans",
    "notosanscjk-regular",
    "notosanscjksc-regular",
    "sourcehansans-regular",
    "arialuni",
    "arialunicodems",
    "liberationsans-regular",
    "arial",
    "segoeui",
    "helvetica",
    "msyh",
    "pingfang",
    "hiraginosans-w3",
    "malgun",
)
"""File stems (lower case, no spaces or underscores) tried first, in this order."""

_STYLE_WORDS = ("bold", "italic", "oblique", "mono", "serif", "condensed", "narrow", "light", "thin", "black", "math")
_NOT_DRAWN = ("Z", "C")
"""Unicode categories with nothing to draw (spaces, controls, format characters): never "missing"."""

_PROBE_SIZE = 24
_warned: set[str] = set()


def _system_dirs() -> list[Path]:
    home = Path.home()
    if sys.platform == "darwin":
        return [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts"]
    if sys.platform == "win32":
        local = Path(os.environ.get("LOCALAPPDATA", home / "AppData/Local"))
        return [Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts", local / "Microsoft/Windows/Fonts"]
    return [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".fonts", home / ".local/share/fonts"]


def _fontconfig_files() -> list[Path]:
    """The font files fontconfig knows (none when ``fc-list`` is missing or fails)."""
    if shutil.which("fc-list") is None:
        return []
    try:
        listed = subprocess.run(
            ["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(line) for line in listed.stdout.splitlines() if line]


def _walk(places: list[Path]) -> list[Path]:
    files = []
    for place in places:
        if place.is_file():
            files.append(place)
        elif place.is_dir():
            files += [Path(root) / name for root, _, names in os.walk(place) for name in names]
    return files


def _rank(path: Path) -> tuple[int, int, str]:
    """Preferred stems first, then plain (regular, sans) faces, then by name."""
    stem = path.stem.lower().replace(" ", "").replace("_", "")
    preferred = PREFERRED.index(stem) if stem in PREFERRED else len(PREFERRED)
    styled = sum(word in stem for word in _STYLE_WORDS)
    return preferred, styled, stem


@lru_cache(maxsize=4)
def font_files(dirs: str | None = None) -> tuple[str, ...]:
    """Font files in preference order, ending with ``BUILTIN``.

    ``dirs`` (the ``$FASEG_FONT_DIRS`` syntax) replaces the system's fonts when given.
    """
    if dirs is not None:
        found = _walk([Path(p).expanduser() for p in dirs.split(os.pathsep) if p])
    else:
        found = _fontconfig_files() + _walk(_system_dirs())
    unique = {str(p.resolve()): p for p in found if p.suffix.lower() in FONT_SUFFIXES}
    return (*sorted(unique, key=lambda name: _rank(unique[name])), BUILTIN)


@lru_cache(maxsize=64)
def load(file: str, size: int) -> ImageFont.FreeTypeFont | None:
    """The font in ``file`` at ``size`` pixels (``BUILTIN``: Pillow's own), or None if it cannot be read."""
    try:
        return ImageFont.load_default(size) if file == BUILTIN else ImageFont.truetype(file, size)
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=65536)
def has_glyph(file: str, char: str) -> bool:
    """Whether the font in ``file`` draws ``char`` as something other than its missing-glyph box."""
    font = load(file, _PROBE_SIZE)
    if font is None:
        return False
    if unicodedata.category(char)[0] in _NOT_DRAWN:
        return True
    missing = font.getmask("\uffff")
    glyph = font.getmask(char)
    return glyph.size != missing.size or bytes(glyph) != bytes(missing)


def font_for(text: str, size: int) -> ImageFont.FreeTypeFont:
    """The font ``font_file_for(text)`` at ``size`` pixels (Pillow's built-in if that cannot be read)."""
    return load(font_file_for(text), size) or load(BUILTIN, size)


def font_file_for(text: str) -> str:
    """The first font file (in ``font_files`` order) with every glyph of ``text``.

    When no font has them all: the one with most, after one warning per script that
    no font has.
    """
    files = font_files(os.environ.get(FONT_DIRS_ENV))
    chars = set(text)
    best, best_missing = BUILTIN, chars
    for file in files:
        missing = {c for c in chars if not has_glyph(file, c)}
        if not missing:
            return file
        if len(missing) < len(best_missing):
            best, best_missing = file, missing
    _warn_missing({c for c in best_missing if not any(has_glyph(f, c) for f in files)})
    return best


def script(char: str) -> str:
    """A readable name of ``char``'s script: the first word of its Unicode name (``CJK``, ``Arabic``...)."""
    if unicodedata.category(char)[0] not in "LMN":
        return "symbols"
    word = unicodedata.name(char, f"U+{ord(char):04X}").split()[0]
    return word if len(word) <= 3 else word.title()


def install_hint(name: str) -> str:
    """A Debian/Ubuntu package with fonts for the script ``name``."""
    if name in {"CJK", "Hiragana", "Katakana", "Hangul", "Bopomofo"}:
        return "apt install fonts-noto-cjk"
    return "apt install fonts-symbola" if name == "symbols" else "apt install fonts-noto-core"


def _warn_missing(chars: set[str]) -> None:
    """One warning per script of ``chars`` (those no font has), once per process."""
    by_script: dict[str, list[str]] = {}
    for char in sorted(chars):
        by_script.setdefault(script(char), []).append(char)
    for name, examples in by_script.items():
        if name in _warned:
            continue
        _warned.add(name)
        log.warning(
            "No installed font has glyphs for %s (%s): they show as boxes in pictures. Install a font with them "
            "(e.g. `%s`, or put a .ttf/.otf file in ~/.local/share/fonts).",
            name,
            "".join(examples[:5]),
            install_hint(name),
        )
