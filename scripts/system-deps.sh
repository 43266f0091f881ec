#!/usr/bin/env bash
# Make sure the system has what gridmap needs: Python >= 3.11 with venv, node and npm (the
# front-end assets come from the npm registry), the system Chromium at /usr/bin/chromium (the
# browser tests drive it with Playwright), and (unless GRIDMAP_DATABASE_URL points at an
# existing PostGIS) a PostgreSQL server with PostGIS.
# As root it installs what is missing with apt-get; otherwise it prints the exact command.
set -euo pipefail

need=()
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null || ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "gridmap needs Python 3.11 or newer as '$python' (set PYTHON=... to use another)." >&2
    exit 1
fi
"$python" -c 'import venv, ensurepip' 2>/dev/null || need+=("python3-venv")
command -v node >/dev/null || need+=("nodejs")
command -v npm >/dev/null || need+=("npm")
[ -x /usr/bin/chromium ] || need+=("chromium")

# Chinese labels in browser screenshots need a CJK font (a small one)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=("fonts-wqy-microhei")

if [ -z "${GRIDMAP_DATABASE_URL:-}" ]; then
    server=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$server" ]; then
        need+=("postgresql" "postgresql-postgis")
    else
        major=$(basename "$(dirname "$(dirname "$server")")")
        [ -f "/usr/share/postgresql/$major/extension/postgis.control" ] || need+=("postgresql-$major-postgis-3")
    fi
fi

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "Installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "gridmap needs these system packages: ${need[*]}" >&2
    echo "Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
    case " ${need[*]} " in
        *postgres*) echo "or, instead of PostgreSQL, set GRIDMAP_DATABASE_URL to an existing PostGIS database." >&2 ;;
    esac
    exit 1
fi
