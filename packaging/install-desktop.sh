#!/usr/bin/env sh
# Install (or remove) the desktop integration of Consistency Studio from a checkout: the .desktop entry (so it
# shows in the app menu and in "Open with" for images), the hicolor icons and the AppStream metainfo.
#
#   packaging/install-desktop.sh                       # for you: ~/.local/share/{applications,icons,metainfo}
#   packaging/install-desktop.sh --exec "$PWD/.venv/bin/cstudio"   # when cstudio is not on PATH (a venv)
#   sudo packaging/install-desktop.sh --prefix /usr/local/share      # for everyone
#   packaging/install-desktop.sh --uninstall [--prefix DIR]
#
# Layout (freedesktop icon theme spec; APP_ID = io.github.consistency_studio.ConsistencyStudio):
#   DIR/applications/APP_ID.desktop
#   DIR/metainfo/APP_ID.metainfo.xml
#   DIR/icons/hicolor/scalable/apps/APP_ID.svg
#   DIR/icons/hicolor/NxN/apps/APP_ID.png          N = 16 32 48 64 128 256 512
set -eu

APP_ID=io.github.consistency_studio.ConsistencyStudio
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PREFIX=${XDG_DATA_HOME:-$HOME/.local/share}
EXEC=""
UNINSTALL=0

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix|--exec)
      # Without this check `set -u` stops at "$2" with only "parameter not set".
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "error: $1 needs a value (see --help)" >&2; exit 2; fi
      if [ "$1" = --prefix ]; then PREFIX=$2; else EXEC=$2; fi
      shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;  # the header comment, however long
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

SIZES="16 32 48 64 128 256 512"
files() {
  echo "applications/$APP_ID.desktop"
  echo "metainfo/$APP_ID.metainfo.xml"
  echo "icons/hicolor/scalable/apps/$APP_ID.svg"
  for n in $SIZES; do echo "icons/hicolor/${n}x${n}/apps/$APP_ID.png"; done
}

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$PREFIX/applications" || true
  # Refresh an existing icon cache only: creating one in a user folder would hide icons installed later.
  if [ -f "$PREFIX/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -f -t "$PREFIX/icons/hicolor" || true
  fi
}

if [ "$UNINSTALL" = 1 ]; then
  for f in $(files); do rm -f "$PREFIX/$f"; done
  # Empty folders the install may have made (rmdir never removes a non-empty one), only in the
  # user's own data folder: under a system prefix the icon theme's package owns its empty size folders.
  case "$PREFIX" in
    "$HOME"/*)
      for n in scalable $(for n in $SIZES; do echo "${n}x${n}"; done); do
        rmdir "$PREFIX/icons/hicolor/$n/apps" "$PREFIX/icons/hicolor/$n" 2>/dev/null || true
      done
      rmdir "$PREFIX/metainfo" "$PREFIX/icons/hicolor" "$PREFIX/icons" 2>/dev/null || true ;;
  esac
  refresh
  echo "removed Consistency Studio's desktop files from $PREFIX"
  exit 0
fi

if [ -z "$EXEC" ]; then
  if ! command -v cstudio >/dev/null 2>&1; then
    echo "warning: cstudio is not on PATH; the menu entry will not start until it is (or pass --exec /path/to/cstudio)" >&2
  fi
  EXEC=cstudio
fi
case "$EXEC" in
  # A launcher runs Exec from its own folder, not this one: a relative path would never start.
  /*) ;;
  */*) EXEC=$(pwd)/$EXEC ;;
esac
case "$EXEC" in
  */*) [ -x "$EXEC" ] || echo "warning: $EXEC is not an executable file; the menu entry stays hidden until it is" >&2 ;;
esac
case "$EXEC" in
  *"
"*) echo "error: the --exec path contains a line break, which a desktop entry cannot hold" >&2; exit 2 ;;
esac
# Desktop Entry spec, "The Exec key": an argument with a reserved character (space, quotes, \, $, &, |, ...)
# is written in double quotes, inside which ", `, $ and \ take a backslash; a literal % is %%. The value is
# then a string, whose own escape rule doubles every backslash again. TryExec is a plain string.
case "$EXEC" in
  *[!A-Za-z0-9_./+,:=@-]*)
    quoted=$(printf '%s\n' "$EXEC" | sed -e 's/[\\"`$]/\\&/g' -e 's/%/%%/g' -e 's/\\/\\\\/g')
    EXEC_FIELD="\"$quoted\"" ;;
  *) EXEC_FIELD=$EXEC ;;
esac
TRYEXEC_FIELD=$(printf '%s\n' "$EXEC" | sed -e 's/\\/\\\\/g')

install -d "$PREFIX/applications" "$PREFIX/metainfo" "$PREFIX/icons/hicolor/scalable/apps"
# awk reads the values from the environment: unlike a sed replacement (& | \) or awk -v (\), ENVIRON takes
# them verbatim, whatever the path holds.
EXEC_FIELD=$EXEC_FIELD TRYEXEC_FIELD=$TRYEXEC_FIELD awk '
  /^Exec=cstudio / { print "Exec=" ENVIRON["EXEC_FIELD"] substr($0, length("Exec=cstudio") + 1); next }
  /^TryExec=cstudio$/ { print "TryExec=" ENVIRON["TRYEXEC_FIELD"]; next }
  { print }
' "$HERE/$APP_ID.desktop" > "$PREFIX/applications/$APP_ID.desktop"
chmod 644 "$PREFIX/applications/$APP_ID.desktop"
install -m 644 "$HERE/$APP_ID.metainfo.xml" "$PREFIX/metainfo/$APP_ID.metainfo.xml"
install -m 644 "$ROOT/resources/icons/hicolor/scalable/apps/$APP_ID.svg" "$PREFIX/icons/hicolor/scalable/apps/"
for n in $SIZES; do
  install -d "$PREFIX/icons/hicolor/${n}x${n}/apps"
  install -m 644 "$ROOT/resources/icons/hicolor/${n}x${n}/apps/$APP_ID.png" "$PREFIX/icons/hicolor/${n}x${n}/apps/"
done
refresh
echo "installed Consistency Studio's desktop entry, icons and metainfo under $PREFIX (Exec: $EXEC_FIELD)"
