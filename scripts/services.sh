# Sourced by scripts/test.sh: finds, installs or starts the services the tests use.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# PostgreSQL on 127.0.0.1:5432. A server already there is used as it is (with trust
# or with the password "postgres" for the user postgres); otherwise Debian's
# server is installed, started, and given that password.
PG_URL="postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/postgres"
ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
    return 0
  fi
  apt_install postgresql
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
}

# Redis on 127.0.0.1:6379 for the scale-out tests (the Celery broker, the live events'
# streams): a server already there is used as it is; otherwise Debian's is installed
# and started.
REDIS_URL="redis://127.0.0.1:6379"
ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    return 0
  fi
  apt_install redis-server
  as_root service redis-server start || as_root redis-server --daemonize yes --bind 127.0.0.1
  for _ in $(seq 1 30); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 1
  done
  redis-cli -h 127.0.0.1 -p 6379 ping
}

# The voice tests' real peers and tools: sipp (Debian's sip-tester) places calls,
# baresip is a second SIP client, kamailio a registrar; espeak-ng and sox make and
# convert speech; pocketsphinx-testdata has human recordings for the speech tests.
# baresip-core without its recommends (no desktop sound stack).
ensure_voice_tools() {
  apt_install sip-tester baresip-core kamailio espeak-ng sox pocketsphinx-testdata
}

# Debian's Chromium for the browser tests (driven by Playwright with executable_path;
# `playwright install` is never run: it would download a browser).
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
  apt_install fonts-wqy-microhei  # so that screenshots of the Chinese pages can be read
}

# The media server (docs/media.md): Janus from Debian with janus-pp-rec (janus-tools),
# janus.js and adapter.js (served by the hotline itself), ffmpeg for recordings, and
# iproute2 for the network namespaces the WebRTC tests make, and a Chinese font to embed
# in the mediation agreements (PDF).
ensure_media_tools() {
  apt_install janus janus-tools libjs-janus-gateway libjs-webrtc-adapter ffmpeg iproute2 \
    fonts-wqy-microhei
}
