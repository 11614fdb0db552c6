#!/usr/bin/env bash
# Installs what the tests need (on a fresh Debian 12 machine) and runs every
# check CI runs: rustfmt, clippy, the test suite and the benchmarks in test
# mode (each benchmark function run once, so they keep building and
# working). Every cargo step runs even if an earlier one failed; the exit
# status is non-zero if any step failed.
#
# CI runs it through .ci/run. Set CARGO_TARGET_DIR as usual to build
# elsewhere.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/test.sh [options]

  --no-install   do not install missing system or npm packages (only report them)
  --skip-cargo   only check/install the dependencies, run no cargo step
  --dry-run      print the commands instead of running them
  -h, --help     show this help
EOF
}

install=1
cargo_steps=1
dry_run=0
for arg in "$@"; do
    case $arg in
    --no-install) install=0 ;;
    --skip-cargo) cargo_steps=0 ;;
    --dry-run) dry_run=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "test.sh: unknown option: $arg" >&2
        usage >&2
        exit 2
        ;;
    esac
done

# The repository root, whatever the working directory.
src=${BASH_SOURCE[0]}
case $src in
*/*) cd "${src%/*}/.." ;;
*) cd .. ;;
esac

section() {
    printf '\n==== %s ====\n' "$*"
}

# Prints a command, then runs it (only prints it with --dry-run).
run() {
    printf '+ %s\n' "$*"
    if [ "$dry_run" -eq 1 ]; then
        return 0
    fi
    "$@"
}

# ---------------------------------------------------------------------------
section "System dependencies (ffmpeg, ffprobe)"

missing_tools() {
    local tool
    for tool in ffmpeg ffprobe; do
        command -v "$tool" >/dev/null 2>&1 || printf '%s ' "$tool"
    done
}

missing=$(missing_tools)
if [ -z "$missing" ]; then
    echo "found: $(command -v ffmpeg) $(command -v ffprobe)"
elif [ "$install" -eq 0 ]; then
    echo "warning: missing ${missing}(not installed: --no-install); tests that need them will fail" >&2
else
    echo "missing: ${missing}- installing the ffmpeg package"
    if [ "$EUID" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: installing ffmpeg needs root or sudo" >&2
        exit 1
    fi
    # env passes DEBIAN_FRONTEND through sudo, which resets the environment.
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg
    if [ "$dry_run" -eq 0 ]; then
        missing=$(missing_tools)
        if [ -n "$missing" ]; then
            echo "error: still missing after apt-get install: ${missing}" >&2
            exit 1
        fi
        echo "installed: $(command -v ffmpeg) $(command -v ffprobe)"
    fi
fi

# ---------------------------------------------------------------------------
section "Player test dependencies (Chromium, Node.js, tests/player npm packages)"

# tests/players.rs plays the server's output with hls.js in Debian's Chromium,
# driven by playwright-core from Node.js; no browser is downloaded.
player_pkgs=()
[ -x /usr/bin/chromium ] || player_pkgs+=(chromium)
command -v node >/dev/null 2>&1 || player_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || player_pkgs+=(npm)
if [ "${#player_pkgs[@]}" -eq 0 ]; then
    echo "found: /usr/bin/chromium, node $(node --version), npm $(npm --version 2>/dev/null)"
elif [ "$install" -eq 0 ]; then
    echo "warning: missing ${player_pkgs[*]} (not installed: --no-install); tests/players.rs will fail" >&2
else
    echo "missing: ${player_pkgs[*]} - installing"
    if [ "$EUID" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: installing ${player_pkgs[*]} needs root or sudo" >&2
        exit 1
    fi
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${player_pkgs[@]}"
fi
# hls.js and playwright-core, as pinned by tests/player/package-lock.json:
# installed unless node_modules holds exactly the locked versions.
player_modules_match_lock() {
    command -v node >/dev/null 2>&1 && node -e '
        const fs = require("fs");
        const lock = JSON.parse(fs.readFileSync("tests/player/package-lock.json", "utf8"));
        for (const [path, p] of Object.entries(lock.packages)) {
            if (!path) continue;
            const f = "tests/player/" + path + "/package.json";
            if (!fs.existsSync(f) || JSON.parse(fs.readFileSync(f, "utf8")).version !== p.version) process.exit(1);
        }' 2>/dev/null
}
if player_modules_match_lock; then
    echo "found: tests/player/node_modules (the versions in package-lock.json)"
elif [ "$install" -eq 0 ]; then
    echo "warning: tests/player/node_modules is missing or stale (not installed: --no-install)" >&2
elif [ "$dry_run" -eq 0 ] && ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is not on PATH; cannot install tests/player's packages" >&2
    exit 1
else
    run npm --prefix tests/player ci --no-audit --no-fund
fi

# ---------------------------------------------------------------------------
section "CDN test dependency (nginx)"

# tests/failover.rs puts the pair behind a real nginx (conf/cdn/nginx.conf),
# started as a standalone process on a loopback port.
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "found: $(command -v nginx || echo /usr/sbin/nginx)"
elif [ "$install" -eq 0 ]; then
    echo "warning: nginx is missing (not installed: --no-install); tests/failover.rs will fail" >&2
else
    echo "missing: nginx - installing"
    if [ "$EUID" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: installing nginx needs root or sudo" >&2
        exit 1
    fi
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light
fi

# ---------------------------------------------------------------------------
section "Clock test dependencies (chrony, libfaketime)"

# tests/health.rs runs chronyd as an NTP server on loopback (it never sets the
# system clock) and skews one node's clock with libfaketime (LD_PRELOAD).
clock_pkgs=()
[ -x /usr/sbin/chronyd ] || command -v chronyd >/dev/null 2>&1 || clock_pkgs+=(chrony)
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || clock_pkgs+=(libfaketime)
if [ "${#clock_pkgs[@]}" -eq 0 ]; then
    echo "found: chronyd, $(compgen -G '/usr/lib/*/faketime/libfaketime.so.1' | head -n 1)"
elif [ "$install" -eq 0 ]; then
    echo "warning: missing ${clock_pkgs[*]} (not installed: --no-install); tests/health.rs will fail" >&2
else
    echo "missing: ${clock_pkgs[*]} - installing"
    if [ "$EUID" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: installing ${clock_pkgs[*]} needs root or sudo" >&2
        exit 1
    fi
    # The test starts its own chronyd; where an init system runs, the
    # package also enables Debian's chrony service (it keeps the system clock).
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${clock_pkgs[@]}"
fi

# ---------------------------------------------------------------------------
section "Fuzz dependency (python3)"

# fuzz/seeds.py writes the fuzz targets' seed corpora (scripts/fuzz.sh).
if command -v python3 >/dev/null 2>&1; then
    echo "found: $(command -v python3)"
elif [ "$install" -eq 0 ]; then
    echo "warning: python3 is missing (not installed: --no-install); the fuzz step will fail" >&2
else
    echo "missing: python3 - installing"
    if [ "$EUID" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: installing python3 needs root or sudo" >&2
        exit 1
    fi
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y python3
fi

if [ "$cargo_steps" -eq 0 ]; then
    section "Cargo steps skipped (--skip-cargo)"
    exit 0
fi

# ---------------------------------------------------------------------------
section "Rust toolchain"

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not on PATH; install a Rust toolchain (rustup) first" >&2
    exit 1
fi
for component in fmt clippy; do
    if ! cargo "$component" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            name=$component
            [ "$component" = fmt ] && name=rustfmt
            run rustup component add "$name"
        else
            echo "error: cargo $component is not available and rustup is not on PATH" >&2
            exit 1
        fi
    fi
done
cargo --version
cargo fmt --version
cargo clippy --version

failed=()

# Runs one cargo step under its own header; records a failure and goes on.
step() {
    local name=$1
    shift
    section "$name"
    if run "$@"; then
        if [ "$dry_run" -eq 1 ]; then
            echo "(dry run: not run)"
        else
            echo "ok: $name"
        fi
    else
        echo "FAILED: $name" >&2
        failed+=("$name")
    fi
}

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
# --no-fail-fast: one failing test binary does not hide the others' results.
step "cargo test" cargo test --workspace --no-fail-fast

# The fuzz targets (fuzz/, docs/robustness.md), a few seconds each:
# installs cargo-fuzz if missing, builds them on the stable toolchain and
# fails on any crash.
step "fuzz (quick)" scripts/fuzz.sh --quick --jobs 2

shopt -s nullglob
benches=(benches */benches)
shopt -u nullglob
if [ "${#benches[@]}" -gt 0 ]; then
    # Criterion's --test runs every benchmark function once, without
    # measuring: well under a minute once built. --bench '*' selects the
    # bench targets only (--benches would also run the library's unit
    # tests as benchmarks).
    step "cargo bench (test mode)" cargo bench --workspace --bench '*' -- --test
else
    section "cargo bench (test mode)"
    echo "skipped: no benches directory"
fi

# ---------------------------------------------------------------------------
section "Summary"
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
if [ "$dry_run" -eq 1 ]; then
    echo "dry run: nothing was run"
else
    echo "all checks passed"
fi
